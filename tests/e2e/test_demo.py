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
from datetime import date
from pathlib import Path
from typing import Any

from client.citizen import CitizenClient
from client.till import TicketContract, TillClient
from client.wire import Session, TicketQuote, TicketUse
from ops.embedded import DATABASE_URL_ENV, REDIS_URL_ENV


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_demo_serves_a_claim_ready_citizen_and_stops_its_services(tmp_path: Path) -> None:
    # and a sales office where the demo citizen's house ticket is used (issue 13)
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
        # issue 13: the README's walk-through: the sales office's till, the demo citizen's
        # code, the quote on the demo unit, the use
        office = json.loads((tmp_path / "data" / "demo" / "demo-sales-office.json").read_text())
        quoted, used = asyncio.run(
            sell(f"http://127.0.0.1:{port}", office, credentials["citizen_id_number"])
        )
        assert quoted.lines[0].number == office["ticket_number"]
        assert (quoted.amount_fen, quoted.subsidy_fen) == (60 * WAN, 6 * WAN)  # month 1: 10%
        assert used.draws[0].balance_fen == 40 * WAN
    finally:
        demo.send_signal(signal.SIGINT)
        out, _ = demo.communicate(timeout=60)
    assert demo.returncode == 0
    assert "python -m terminal" in out
    assert not (tmp_path / "data" / "demo" / "redis" / "redis.sock").exists()
    assert not (tmp_path / "data" / "demo" / "postgres" / "postmaster.pid").exists()


WAN = 1_000_000  # 1 万元 in fen


async def sell(
    server: str, office: dict[str, Any], id_number: str
) -> tuple[TicketQuote, TicketUse]:
    till = TillClient(server, office["terminal_id"], office["terminal_secret"], retries=0)
    citizen = CitizenClient(server)
    try:
        session = await till.sign_in()
        assert session.merchant.kind == "developer"
        assert [u.unit for u in (await till.listing_pool()).units] == office["units"]
        await citizen.sign_in_demo(id_number)
        token = (await citizen.qr()).token
        contract = TicketContract("WQ-DEMO-1", "1-101", date.fromisoformat(
            office["ticket_issued_on"]), 150 * WAN)  # fmt: skip
        quoted = await till.ticket_quote(token, contract, [60 * WAN])
        return quoted, await till.use_ticket(token, contract, [60 * WAN])
    finally:
        await till.close()
        await citizen.close()


async def sign_in(server: str, terminal_id: int, secret: str) -> Session:
    till = TillClient(server, terminal_id, secret, retries=0)
    try:
        return await till.sign_in()
    finally:
        await till.close()
