"""Server processes on loopback standing in for hosts (issue 14).

Each "host" is ``python -m server serve`` on a port of its own, configured only through its
VOUCHER_* environment, as in production; all of them share one PostgreSQL and one Redis (or
one Redis Cluster). The campaign they load is the demo's, its dates moved so that today lies
in its first phase: a real server reads the real clock.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from server.campaign_files import bundled_campaigns_dir
from server.settings import write_qr_key_file
from shared.tokens import QrKey, issue_qr_token

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN_ID = "many-hosts"
# a day in the demo campaign's first phase (claims open, vouchers usable): today plays it
_REFERENCE_DAY = date(2026, 10, 1)
_START_S = 60.0  # a host that is not ready by then failed to start (its log says why)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def campaign_around(today: date, folder: Path) -> Path:
    """The demo campaign under CAMPAIGN_ID, every date moved by the same number of days so
    that ``today`` falls where _REFERENCE_DAY did (rules C1, V1, V3 hold as written)."""
    shift = today - _REFERENCE_DAY
    text = (bundled_campaigns_dir() / "liaocheng-demo.toml").read_text(encoding="utf-8")
    text = re.sub(
        r"\b\d{4}-\d{2}-\d{2}\b", lambda m: (date.fromisoformat(m[0]) + shift).isoformat(), text
    )
    text = text.replace('id = "liaocheng-demo"', f'id = "{CAMPAIGN_ID}"', 1)
    path = folder / f"{CAMPAIGN_ID}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class ServerConfig:
    """What every host is started with: one ledger, one Redis, the same secrets and keys."""

    database_url: str
    redis_url: str
    folder: Path
    redis_cluster: bool = False
    qr_key: QrKey = field(default_factory=lambda: QrKey.generate("H"))
    extra: dict[str, str] = field(default_factory=dict)

    def env(self, port: int) -> dict[str, str]:
        key_file = self.folder / "qr.key"
        if not key_file.exists():
            write_qr_key_file(key_file, self.qr_key)
        tz = ZoneInfo("Asia/Shanghai")
        campaign = campaign_around(datetime.now(tz).date(), self.folder)
        keep = {k: v for k, v in os.environ.items() if not k.startswith("VOUCHER_")}
        return {
            **keep,
            "PYTHONPATH": str(ROOT),
            "VOUCHER_DATABASE_URL": self.database_url,
            "VOUCHER_REDIS_URL": self.redis_url,
            "VOUCHER_REDIS_CLUSTER": "1" if self.redis_cluster else "0",
            "VOUCHER_ID_HASH_KEY": _secret(self.folder, "id-hash-key"),
            "VOUCHER_ACCESS_TOKEN_SECRET": _secret(self.folder, "access-token-secret"),
            "VOUCHER_QR_KEYS": f"{self.qr_key.kid}={key_file}",
            "VOUCHER_CAMPAIGN_FILES": str(campaign),
            "VOUCHER_HOST": "127.0.0.1",
            "VOUCHER_PORT": str(port),
            "VOUCHER_PG_POOL_MAX": "8",
            **self.extra,
        }

    def qr(self, citizen_id: int) -> str:
        """A fresh code of the citizen, made with the hosts' key: the test plays the
        citizen's wallet, which is not what it tests (rule U5)."""
        token, _ = issue_qr_token(
            key=self.qr_key, holder=citizen_id, now=datetime.now(UTC), ttl_seconds=60
        )
        return token


def _secret(folder: Path, name: str) -> str:
    """One random 32-byte secret per folder, the same for every host started from it."""
    path = folder / name
    if not path.exists():
        path.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
    return path.read_text()


@dataclass
class Host:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def terminate(self) -> None:
        """SIGTERM, as an orchestrator stops a host."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def start_hosts(config: ServerConfig, count: int) -> list[Host]:
    """``count`` server processes at once (they migrate the ledger together on start)."""
    hosts = []
    for n in range(count):
        port = free_port()
        log = config.folder / f"host-{n}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "server", "serve"],
                cwd=ROOT,
                env=config.env(port),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        hosts.append(Host(port, process, log))
    return hosts


async def wait_ready(hosts: list[Host]) -> None:
    deadline = time.monotonic() + _START_S
    async with aiohttp.ClientSession() as http:
        for host in hosts:
            while True:
                if host.process.poll() is not None:
                    raise RuntimeError(f"host :{host.port} exited:\n{host.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(f"{host.url}/readyz") as r:
                        if r.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"host :{host.port} not ready:\n{host.log_tail()}")
                await asyncio.sleep(0.1)


def stop_hosts(hosts: list[Host], timeout: float = 20) -> None:
    for host in hosts:
        host.terminate()
    for host in hosts:
        try:
            host.wait(timeout)
        except subprocess.TimeoutExpired:
            host.kill()


def error_code(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("code"))
    return None
