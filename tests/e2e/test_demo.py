"""The README's main job: the demo starts its services, seeds, serves, and stops cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from client.till import TillClient
from client.wire import Session
from ops.embedded import DATABASE_URL_ENV, REDIS_URL_ENV


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_demo_serves_a_claim_ready_citizen_and_stops_its_services(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in (DATABASE_URL_ENV, REDIS_URL_ENV)}
    env["VOUCHER_DATA_DIR"] = str(tmp_path / "data")
    log = tmp_path / "demo-stderr.log"  # its last lines say why, should the demo exit
    with log.open("w") as stderr:  # the child keeps its own copy of the file
        demo = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "ops", "demo", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    assert json.loads(r.read())["status"] == "ready"
                    break
            except OSError:
                assert demo.poll() is None, f"the demo exited:\n{log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, "the demo did not become ready"
                time.sleep(0.3)
        credentials = json.loads((tmp_path / "data" / "demo" / "demo-credentials.json").read_text())
        # the demo's terminal signs in with the credential file, through the till's client
        session = asyncio.run(
            sign_in(
                f"http://127.0.0.1:{port}",
                credentials["terminal_id"],
                credentials["terminal_secret"],
            )
        )
        assert session.merchant.district == "dongchangfu"
    finally:
        demo.send_signal(signal.SIGINT)
        out, _ = demo.communicate(timeout=60)
    assert demo.returncode == 0
    assert "python -m terminal" in out
    assert not (tmp_path / "data" / "demo" / "redis" / "redis.sock").exists()
    assert not (tmp_path / "data" / "demo" / "postgres" / "postmaster.pid").exists()


async def sign_in(server: str, terminal_id: int, secret: str) -> Session:
    till = TillClient(server, terminal_id, secret, retries=0)
    try:
        return await till.sign_in()
    finally:
        await till.close()
