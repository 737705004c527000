"""The functional core stays pure: no I/O frameworks, no clock reads (STYLE.md §1)."""

import re
import subprocess
import sys
from pathlib import Path

import shared

FORBIDDEN_MODULES = ("asyncio", "aiohttp", "asyncpg", "redis", "textual")
SHARED_DIR = Path(shared.__file__).resolve().parent
# every module of the core, so a new one is covered the day it is added
MODULES = sorted(p.stem for p in SHARED_DIR.glob("*.py") if p.stem != "__init__")
CORE = ", ".join(f"shared.{name}" for name in MODULES)


def test_importing_the_core_loads_no_io_framework() -> None:
    code = f"import {CORE}; import sys; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run(  # noqa: S603 (our own interpreter, fixed arguments)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    loaded = {name.split(".")[0] for name in out}
    assert "shared" in loaded
    assert not loaded & set(FORBIDDEN_MODULES), sorted(loaded & set(FORBIDDEN_MODULES))


def test_the_core_never_reads_the_clock() -> None:
    clock = re.compile(r"datetime\.now|date\.today|time\.time|datetime\.utcnow")
    offenders = [
        f"{path.name}:{n}"
        for path in sorted(SHARED_DIR.glob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if clock.search(line)
    ]
    assert offenders == []


def test_the_core_source_imports_no_io_framework() -> None:
    pattern = re.compile(rf"^\s*(from|import)\s+({'|'.join(FORBIDDEN_MODULES)})\b", re.M)
    offenders = [
        p.name for p in SHARED_DIR.glob("*.py") if pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []
