"""Issue 9, loose end A: after a run with embedded services is killed with SIGKILL, the next
run takes the leftover servers over, and stopping it stops them all.

Both runs are real processes (``services()`` as the demo uses it) in a folder of this test;
the first is SIGKILLed, so nothing of its own clean-up runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
RUN = """
import sys, time
from pathlib import Path
from ops.embedded import services
with services(data_dir=Path(sys.argv[1]), env={}) as (urls, pg, rd):
    print(urls.database_url, urls.redis_url, flush=True)
    if sys.argv[2] == "wait":
        time.sleep(600)
"""


@pytest.fixture
def folder() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="voucher-kill-"))
    yield path
    for pid in _pids(path):  # whatever a failed test left running
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (ProcessLookupError, FileNotFoundError):
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"  # a zombie has ended


def _pids(folder: Path) -> list[int]:
    pids = []
    for pid_file in (folder / "postgres" / "postmaster.pid", folder / "redis" / "redis.pid"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            pids.append(int(pid_file.read_text().split()[0]))
    return pids


def _start(folder: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - this interpreter, this test's script
        [sys.executable, "-c", RUN, str(folder), mode],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )


def _wait_gone(pid: int, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def test_a_run_after_a_killed_one_takes_over_and_stops_everything(folder: Path) -> None:
    # loose end A
    first = _start(folder, "wait")
    assert first.stdout is not None
    line = first.stdout.readline()  # the services are up
    assert line.startswith("postgresql://"), line
    postmaster = int((folder / "postgres" / "postmaster.pid").read_text().split()[0])
    client = redis.Redis.from_url(line.split()[1])
    try:
        redis_pid = int(client.info("server")["process_id"])
    finally:
        client.close()
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    first.stdout.close()
    assert _alive(postmaster) and _alive(redis_pid)  # left behind, as a killed demo leaves them

    second = _start(folder, "exit")
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 0
    assert out.startswith("postgresql://")

    assert _wait_gone(postmaster), "the embedded PostgreSQL still runs"
    assert _wait_gone(redis_pid), "the first redis-server still runs"
    assert not (folder / "postgres" / "postmaster.pid").exists()
    assert not (folder / "redis" / "redis.pid").exists()
