"""Entry point; the only place that reads the environment.

python -m server serve   # production: VOUCHER_* variables (see README)
python -m server demo    # embedded services unless VOUCHER_*_URL are set, demo campaign,
                         # seeded merchant/terminal/citizen, development identity provider
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from datetime import date

import asyncpg
from aiohttp import web

from server import seed
from server.app import create_app, freeze_heap, load_campaigns
from server.db import campaigns as campaign_db
from server.db.migrate import migrate
from server.embedded import DATABASE_URL_ENV, REDIS_URL_ENV, default_data_dir, services
from server.settings import Settings
from server.web import JsonLogFormatter
from shared.idnumber import make_id_number

DEMO_ID_NUMBER = make_id_number("371502", date(1985, 6, 1), "123")
DEMO_CERTIFICATE = "鲁(2026)聊城市不动产权第0000001号"


def _fast_loop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is not on every platform
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])


DEMO_STAFF = (
    ("demo-city", "city_operator", None),
    ("demo-treasury", "city_operator", None),
    ("demo-district", "district_operator", "dongchangfu"),
)


async def _seed_demo(settings: Settings, saved: dict[str, object] | None) -> dict[str, object]:
    """Idempotent: the demo merchant, terminal and certificate are made once per data folder."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        await migrate(conn)
        for campaign in load_campaigns(settings).values():
            await campaign_db.upsert(conn, campaign)
        if saved is not None:
            return saved
        async with conn.transaction():
            till = await seed.merchant_with_terminal(
                conn, name="东昌府区示范超市", district="dongchangfu"
            )
            await seed.certificate(
                conn,
                cert_no=DEMO_CERTIFICATE,
                district="dongchangfu",
                owners=[DEMO_ID_NUMBER],
                id_hash_key=settings.id_hash_key,
                issued_on=date(2026, 9, 1),
                invoice_excl_vat_fen=120_000_000,
            )
            await seed.account(
                conn,
                username="demo-manager",
                password="demo-manager-password",  # noqa: S106 - demo account
                role="merchant_manager",
                merchant_id=till.merchant_id,
            )
            # rule S1: the district reviews a batch, one city account approves it, another
            # records the payment (no account takes two of these steps)
            for username, role, district in DEMO_STAFF:
                await seed.account(
                    conn,
                    username=username,
                    password=f"{username}-password",
                    role=role,
                    district=district,
                )
        data: dict[str, object] = {
            "terminal_id": till.terminal_id,
            "terminal_secret": till.secret,
            "merchant_id": till.merchant_id,
            "citizen_id_number": DEMO_ID_NUMBER,
            "certificate_no": DEMO_CERTIFICATE,
            "staff": {
                "demo-city": "demo-city-password (city operator: voucherctl; approves batches)",
                "demo-treasury": "demo-treasury-password (city operator: records payments)",
                "demo-district": "demo-district-password (东昌府区 operator: reviews batches)",
                "demo-manager": "demo-manager-password (the demo merchant's manager)",
            },
        }
        return data
    finally:
        await conn.close()


def demo(host: str, port: int) -> int:
    data_dir = default_data_dir() / "demo"
    with services(data_dir=data_dir) as (urls, _pg, _redis):
        env = dict(os.environ)
        env[DATABASE_URL_ENV] = urls.database_url
        env[REDIS_URL_ENV] = urls.redis_url
        secrets_file = data_dir / "demo-secrets.json"
        if secrets_file.exists():
            stored = json.loads(secrets_file.read_text())
        else:
            import base64
            import secrets as random

            stored = {
                "VOUCHER_ID_HASH_KEY": base64.b64encode(random.token_bytes(32)).decode(),
                "VOUCHER_ACCESS_TOKEN_SECRET": base64.b64encode(random.token_bytes(32)).decode(),
            }
            secrets_file.write_text(json.dumps(stored))
            secrets_file.chmod(0o600)
        env.update(stored)
        settings = Settings.from_env(env, demo=True)
        services_file = data_dir / "demo-services.json"  # for the load test and operators
        services_file.write_text(
            json.dumps({"database_url": urls.database_url, "redis_url": urls.redis_url})
        )
        services_file.chmod(0o600)
        credentials_file = data_dir / "demo-credentials.json"
        saved = json.loads(credentials_file.read_text()) if credentials_file.exists() else None
        info = asyncio.run(_seed_demo(settings, saved))
        if saved is None:
            credentials_file.write_text(json.dumps(info, ensure_ascii=False, indent=2))
            credentials_file.chmod(0o600)
        base = f"http://{host}:{port}"
        print(
            f"""
== Demo server on {base}   (Ctrl-C stops it and the embedded services)
   API description:  {base}/openapi.json      health: {base}/readyz
   Demo terminal:    id {info["terminal_id"]}, credential in {data_dir}/demo-credentials.json
   Demo citizen:     ID number {info["citizen_id_number"]} owns certificate {info["certificate_no"]}
   Cashier terminal (another shell, 80x24 or larger):
       .venv/bin/python -m terminal --server {base} --pair {data_dir}/demo-credentials.json
   Operators:        export VOUCHER_USER=demo-city VOUCHER_PASSWORD=demo-city-password
                     .venv/bin/voucherctl --server {base} merchants list
   Settlement (S1):  review as demo-district, approve as demo-city, pay as demo-treasury
                     (passwords: <username>-password; no account takes two steps)
   Pages (Chinese; add ?lang=en for English):
     Citizen's wallet  {base}/wallet     sign in with the demo citizen's ID number above
     Merchant's day    {base}/merchant   demo-manager / demo-manager-password
     Dashboard         {base}/ops        demo-city / demo-city-password (the city), or
                                         demo-district / demo-district-password (东昌府区)
""",
            flush=True,
        )
        _logging()
        _fast_loop()
        app = create_app(settings)
        app.on_startup.append(freeze_heap)
        web.run_app(app, host=host, port=port, print=None, access_log=None)
    return 0


def serve() -> int:
    """VOUCHER_PROCESSES server processes share the port (SO_REUSEPORT): one per core (on
    the 2-core benchmark machine, two beat one by about a third even with PostgreSQL on the
    same cores; docs/BENCHMARKS.md)."""
    _logging()
    _fast_loop()
    settings = Settings.from_env()
    processes = int(os.environ.get("VOUCHER_PROCESSES", "1"))
    children = []
    for _ in range(processes - 1):
        pid = os.fork()
        if pid == 0:
            _serve_one(settings, reuse_port=True)
            os._exit(0)
        children.append(pid)
    try:
        _serve_one(settings, reuse_port=processes > 1)
    finally:
        for pid in children:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
    return 0


def _serve_one(settings: Settings, *, reuse_port: bool) -> None:
    app = create_app(settings)
    app.on_startup.append(freeze_heap)
    web.run_app(app, host=settings.host, port=settings.port, access_log=None, reuse_port=reuse_port)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m server")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="run the demo with embedded services and seeded data")
    d.add_argument("--host", default="127.0.0.1")
    d.add_argument("--port", type=int, default=8080)
    sub.add_parser("serve", help="run the server from VOUCHER_* settings")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(args.host, args.port)
    return serve()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
