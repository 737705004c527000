"""The functional core stays pure: no I/O frameworks, no file reads, no clock reads (STYLE.md
§1). Every module of ``shared/`` is covered: the list is read from the directory."""

import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import shared

FORBIDDEN_MODULES = (
    "asyncio",
    "aiohttp",
    "asyncpg",
    "redis",
    "textual",
    "server",
    "client",
    "terminal",
    "ops",
)
SHARED_DIR = Path(shared.__file__).resolve().parent
MODULES = sorted(f"shared.{m.name}" for m in pkgutil.iter_modules([str(SHARED_DIR)]))
CORE = ", ".join(MODULES)


def test_every_module_of_the_core_is_checked() -> None:
    # issue 10: the purity checks covered 5 of the 8 modules
    assert len(MODULES) == len(list(SHARED_DIR.glob("*.py"))) - 1  # all but __init__
    assert {"shared.registry", "shared.settlement", "shared.tokens"} <= set(MODULES)


def test_the_core_reads_no_file() -> None:
    # issue 10: campaign files are read at the edge (server/campaign_files.py)
    io = re.compile(
        r"\bopen\(|\.read_(text|bytes)\(|\.write_(text|bytes)\(|\.glob\(|^\s*(from|import)\s+"
        r"(pathlib|os|socket|subprocess|shutil|urllib|http)\b",
        re.M,
    )
    offenders = [
        f"{path.name}: {found.group(0).strip()}"
        for path in sorted(SHARED_DIR.glob("*.py"))
        for found in [io.search(path.read_text(encoding="utf-8"))]
        if found
    ]
    assert offenders == []


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
