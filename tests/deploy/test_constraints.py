"""deploy/constraints.txt pins the service's install, and only the service's: the image
installs the package with it, and a client or load-test dependency has no place there."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import REPO

DEPLOY = REPO / "deploy"
# deploy/constraints.py is a script beside the file it writes, not a module of a package.
_spec = importlib.util.spec_from_file_location("constraints", DEPLOY / "constraints.py")
assert _spec and _spec.loader
constraints = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(constraints)

CLIENT_SIDE = {"locust", "matplotlib", "rich", "httpx"}


def pins() -> dict[str, str]:
    found = {}
    for line in (DEPLOY / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep, f"not an exact pin: {line!r}"
            found[canonicalize_name(name)] = version
    return found


def test_every_base_dependency_is_pinned_within_its_range() -> None:
    pinned = pins()
    for req in constraints.base_requirements():
        name = canonicalize_name(req.name)
        assert name in pinned, f"{name} is not pinned: run `make constraints`"
        assert req.specifier.contains(pinned[name], prereleases=True), (name, pinned[name])


def test_the_service_install_has_no_client_or_load_test_package() -> None:
    base = {canonicalize_name(r.name) for r in constraints.base_requirements()}
    assert not base & CLIENT_SIDE
    assert not set(pins()) & CLIENT_SIDE


def test_extras_name_what_the_commands_need() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    named = {
        extra: {canonicalize_name(Requirement(text).name) for text in reqs}
        for extra, reqs in extras.items()
    }
    assert {"aiohttp", "httpx", "rich"} <= named["client"]
    assert {"locust", "matplotlib", "httpx", "rich"} <= named["loadtest"]


def test_the_image_installs_the_package_with_the_pins() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^COPY .*deploy/constraints\.txt", dockerfile, re.M)
    assert re.search(r"pip install [^\n]*-c constraints\.txt \.", dockerfile)
    assert "!deploy/constraints.txt" in (REPO / ".dockerignore").read_text(encoding="utf-8")


def test_what_the_base_dependencies_pull_in_is_pinned_too() -> None:
    """A new base dependency (or a new extra of one, such as ray[data]) brings packages of its
    own: `make constraints` must run again, or the image installs them unpinned."""
    try:
        needed = constraints.closure(constraints.base_requirements())
    except importlib.metadata.PackageNotFoundError as exc:
        pytest.skip(f"this environment lacks part of the base install: {exc}")
    missing = sorted(set(needed) - set(pins()))
    assert not missing, f"not pinned (run `make constraints`): {missing}"
