"""Print deploy/constraints.txt: the service's install (cleanserve's base dependencies and
everything they pull in) pinned to the versions in this environment.

    python deploy/constraints.py > deploy/constraints.txt      # or: make constraints

The image installs the package with these pins, so a rebuild gets the same Starlette (the
ingress relies on its internals), the same Ray, the same everything. Extras (client,
loadtest, test, dev) are not the service's and are left out.
"""

from __future__ import annotations

import importlib.metadata as metadata
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def base_requirements(pyproject: Path = PYPROJECT) -> list[Requirement]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return [Requirement(text) for text in project["dependencies"]]


def closure(roots: list[Requirement]) -> dict[str, str]:
    """Installed name -> version for roots and their dependencies, extras followed."""
    pinned: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    todo = [(req, "") for req in roots]
    while todo:
        req, extra = todo.pop()
        if req.marker and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(req.name)
        extras = sorted(req.extras) or [""]
        for wanted in extras:
            if (name, wanted) in seen:
                continue
            seen.add((name, wanted))
            dist = metadata.distribution(req.name)
            pinned[name] = dist.version
            todo += [(Requirement(text), wanted) for text in dist.requires or []]
    return pinned


def main() -> int:
    print("# The service's install, pinned: `make constraints` (deploy/constraints.py) writes it.")
    print("# Used by deploy/Dockerfile: pip install -c deploy/constraints.txt .")
    for name, version in sorted(closure(base_requirements()).items()):
        print(f"{name}=={version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
