"""The pure core imports no Ray, HTTP framework or pydantic: it is what every path reuses."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import serve_app.core

FORBIDDEN = ("ray", "fastapi", "starlette", "pydantic", "uvicorn", "httpx", "aiohttp")


def core_modules() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.walk_packages(serve_app.core.__path__, prefix="serve_app.core.")
    )


def test_the_core_has_modules() -> None:
    assert {"serve_app.core.cleaning", "serve_app.core.counting"} <= set(core_modules())


def test_importing_the_core_loads_no_service_framework() -> None:
    # A fresh interpreter: this test process has imported Ray and FastAPI long ago.
    script = (
        "import importlib, sys\n"
        f"for name in {core_modules()!r}: importlib.import_module(name)\n"
        f"bad = sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r}))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"the core imported {result.stdout.strip()}"
