"""CPU per operation: ``python -m bench.costs CONFIG.json RESULT.json`` (issue 14).

One closed loop (``concurrency`` connections, each sending its next request when the last
is answered) of one operation for ``duration`` seconds after a warm-up, with ``/proc`` CPU
per process group around the measured window (``bench.procstat``): the server's processes,
the benchmark database's PostgreSQL backends, this run's redis-server. Divided by the
operations answered with success, that is the CPU each costs, the capacity model's inputs
(docs/SCALING.md). Operations:

- ``quote``: ``POST /v1/quote`` with a fresh QR token (changes nothing);
- ``checkout``: a quote, then ``POST /v1/redemptions`` for one voucher (a till's sale);
- ``claim``: ``POST /v1/claims`` of an unclaimed certificate by its owner, signed in before
  the window (the sign-in is not part of the claim's cost);
- ``refused``: quotes to a server whose load shedding admits one at a time (issue 14): the
  503s are the operations, the quotes it served are counted apart (``admitted``), so that
  their CPU can be taken off.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bench import procstat
from bench.loadgen import HttpConnection, Tokens, post, sign_in


class Costs:
    def __init__(self, cfg: dict[str, Any], tokens: Tokens | None) -> None:
        self.cfg = cfg
        self.tokens = tokens
        split = urlsplit(cfg["base_url"])
        self.host, self.port = split.hostname or "127.0.0.1", split.port or 80
        self.host_header = f"{self.host}:{self.port}".encode()
        self.done = 0
        self.admitted = 0  # "refused": the quotes that were served
        self.failed: dict[str, int] = {}
        self.measuring = False
        self.stop = False
        self.claims: list[tuple[str, bytes]] = []  # (certificate number, citizen's auth header)

    async def _signed_in(self, session: aiohttp.ClientSession) -> list[bytes]:
        base, terminals = self.cfg["base_url"], self.cfg["terminals"][:64]
        tokens = await asyncio.gather(*(sign_in(session, base, t) for t in terminals))
        return [f"Authorization: Bearer {t}\r\n".encode() for t in tokens]

    async def _citizens(self, session: aiohttp.ClientSession) -> None:
        base = self.cfg["base_url"]
        semaphore = asyncio.Semaphore(16)

        async def one(cert_no: str, number: str) -> None:
            async with semaphore:
                async with session.post(
                    base + "/dev/idp/assertion", json={"id_number": number}
                ) as r:
                    assertion = (await r.json())["assertion"]
                async with session.post(
                    base + "/v1/auth/citizen", json={"assertion": assertion}
                ) as r:
                    token = (await r.json())["access_token"]
                self.claims.append((cert_no, f"Authorization: Bearer {token}\r\n".encode()))

        await asyncio.gather(*(one(c, n) for c, n in self.cfg["unclaimed"]))

    def _count(self, ok: bool, status: int, data: bytes) -> None:
        if not self.measuring:
            return
        if ok:
            self.done += 1
            return
        try:
            key = f"{status} {json.loads(data)['error']['code']}"
        except (ValueError, KeyError, TypeError):
            key = str(status)
        self.failed[key] = self.failed.get(key, 0) + 1

    async def loop(self, auth: bytes) -> None:
        conn = await HttpConnection.open(self.host, self.port)
        rng = random.Random()
        try:
            while not self.stop:
                if self.cfg["operation"] == "claim":
                    if not self.claims:
                        return
                    cert_no, citizen = self.claims.pop()
                    claim = json.dumps({"certificate_no": cert_no}).encode()
                    status, data = await conn.request(
                        post(self.host_header, b"/v1/claims", citizen, claim)
                    )
                    self._count(status == 201, status, data)
                    continue
                assert self.tokens is not None
                token, bill = self.tokens.take(), rng.randint(400, 1000) * 100
                quote = json.dumps({"token": token, "bill_fen": bill}).encode()
                status, data = await conn.request(post(self.host_header, b"/v1/quote", auth, quote))
                if self.cfg["operation"] == "refused":
                    if self.measuring and status == 200:
                        self.admitted += 1
                    else:
                        self._count(status == 503, status, data)
                    continue
                if self.cfg["operation"] == "quote" or status != 200:
                    self._count(status == 200, status, data)
                    continue
                receipt = f"K{self.cfg['run_tag']}-{uuid.uuid4().hex[:12]}"
                body = {"token": token, "bill_fen": bill, "voucher_count": 1, "receipt_no": receipt}
                headers = auth + f"Idempotency-Key: {uuid.uuid4()}\r\n".encode()
                status, data = await conn.request(
                    post(self.host_header, b"/v1/redemptions", headers, json.dumps(body).encode())
                )
                self._count(status == 201, status, data)
        finally:
            conn.close()

    async def run(self) -> dict[str, Any]:
        cfg = self.cfg
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            auths = await self._signed_in(session)
            if cfg["operation"] == "claim":
                await self._citizens(session)
        roles = {int(pid): name for pid, name in cfg["roles"].items()}
        roles[os.getpid()] = "load generator"
        loops = [
            asyncio.create_task(self.loop(auths[i % len(auths)]))
            for i in range(int(cfg["concurrency"]))
        ]
        await asyncio.sleep(float(cfg["warmup"]))
        self.measuring = True
        before = await asyncio.to_thread(procstat.snapshot, roles, cfg["database"])
        started = time.perf_counter()
        await asyncio.sleep(float(cfg["duration"]))
        after = await asyncio.to_thread(procstat.snapshot, roles, cfg["database"])
        window = time.perf_counter() - started
        self.measuring = False
        self.stop = True
        await asyncio.wait(loops, timeout=60)
        return {
            "operation": cfg["operation"],
            "window_s": window,
            "done": self.done,
            "admitted": self.admitted,
            "per_s": self.done / window,
            "failed": self.failed,
            "cpu_seconds": procstat.usage(before, after),
        }


def main(argv: list[str]) -> int:
    cfg = json.loads(Path(argv[0]).read_text())
    tokens = None
    if cfg["operation"] != "claim":
        tokens = Tokens.for_citizens(cfg)
        tokens.presign(float(cfg["warmup"]) + float(cfg["duration"]) + 10, 3000.0, 2)
    try:
        import uvloop

        result = uvloop.run(Costs(cfg, tokens).run())
    except ImportError:  # pragma: no cover
        result = asyncio.run(Costs(cfg, tokens).run())
    Path(argv[1]).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
