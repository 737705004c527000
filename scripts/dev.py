#!/usr/bin/env python3
"""The two commands of the README, on a fresh machine with Python 3.11+ and nothing else.

    python3 scripts/dev.py demo    # services, migrations, seed data, server, terminal hint
    python3 scripts/dev.py test    # ruff, mypy, import contracts, the whole test suite

Both first make ``.venv`` and install the project into it (again only when pyproject.toml
changed). PostgreSQL and Redis come from ``VOUCHER_DATABASE_URL`` / ``VOUCHER_REDIS_URL`` when
set, otherwise real embedded servers are started under ``.data/``. Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".installed-pyproject-sha256"


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this file runs under any python3
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print(f"== creating {VENV.relative_to(ROOT)}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    # the dev extra pulls in every other one: server, terminal, ops and embedded (pyproject)
    print("== installing the project and its dependencies into .venv", flush=True)
    pip = [str(PYTHON), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", "-e", f"{ROOT}[dev]"], check=True, cwd=ROOT)
    STAMP.write_text(wanted)


def run(*args: str) -> int:
    print("==", " ".join(args), flush=True)
    return subprocess.run([str(PYTHON), "-m", *args], cwd=ROOT).returncode


def lint_imports() -> int:
    """The layers' import contracts (``[tool.importlinter]`` in pyproject.toml)."""
    print("== lint-imports", flush=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([str(BIN / "lint-imports")], cwd=ROOT, env=env).returncode


def test(extra: list[str]) -> int:
    checks = [
        ("ruff", "check", "."),
        ("ruff", "format", "--check", "."),
        ("mypy",),
    ]
    failed = [" ".join(c) for c in checks if run(*c) != 0]
    if lint_imports() != 0:
        failed.append("lint-imports")
    code = run("pytest", *extra)
    if failed:
        print("== failed:", ", ".join(failed), flush=True)
        return 1
    return code


def demo(extra: list[str]) -> int:
    return run("ops", "demo", *extra)


def main(argv: list[str]) -> int:
    commands = {"test": test, "demo": demo}
    if not argv or argv[0] not in commands:
        print(__doc__)
        return 2
    ensure_venv()
    try:
        return commands[argv[0]](argv[1:])
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
