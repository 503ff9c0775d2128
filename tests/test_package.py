"""The installed package stands on its own: nothing in serve_app/ imports the checkout's
loadtests/ or tests/, which a wheel does not contain."""

from __future__ import annotations

import ast
from pathlib import Path

import serve_app

CHECKOUT_ONLY = ("loadtests", "tests")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module":
            if node.args and isinstance(node.args[0], ast.Constant):
                names.add(str(node.args[0].value))
    return names


def test_the_scan_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from loadtests.run import run\n    import tests.support\n")
    assert imported_modules(module) == {"loadtests.run", "tests.support"}


def test_no_package_module_imports_the_checkout() -> None:
    root = Path(serve_app.__file__).parent
    offenders = {
        f"{path.relative_to(root)}: {name}"
        for path in root.rglob("*.py")
        for name in imported_modules(path)
        if name.split(".")[0] in CHECKOUT_ONLY
    }
    assert not offenders


def test_ci_runs_the_readme_test_command() -> None:
    from tests.support import REPO

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Test it", 1)[1]
    command = section.split("```bash\n", 1)[1].split("\n```", 1)[0].strip()
    assert "make check" in command and "pytest" in command
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert command in ci, f".ci/run must run the README's command: {command}"
