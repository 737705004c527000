"""The demo (``python -m ops demo``, the README's first command): embedded services,
migrations, the campaigns, a seeded merchant, terminal, citizen and staff, and the server
with the development identity provider.

The helpers below put known people, certificates, merchants and terminals in the ledger, for
the demo and tests; operators do this with the registry import and ``voucherctl``. They hash
ID numbers exactly as the server does (rule X3).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ops.embedded import DATABASE_URL_ENV, REDIS_URL_ENV, default_data_dir, services
from server.app import load_campaigns
from server.auth import hash_password, new_terminal_credential
from server.db import Conn, connect, parties, seeding
from server.db import campaigns as campaign_db
from server.db.migrate import migrate
from server.process import fast_loop, json_logging, run_server
from server.settings import Settings, write_qr_key_file
from shared.idnumber import hash_id_number, make_id_number, mask_id_number, validate_id_number
from shared.tokens import QrKey


@dataclass(frozen=True, slots=True)
class TerminalCredential:
    terminal_id: int
    merchant_id: int
    secret: str


async def certificate(
    conn: Conn,
    *,
    cert_no: str,
    district: str,
    owners: list[str],
    id_hash_key: bytes,
    issued_on: date,
    invoice_excl_vat_fen: int,
    tax_relief_fen: int = 0,
    property_type: str = "housing",
    new_build: bool = True,
) -> int:
    """An imported registration record (rule E3) with its owners' hashed ID numbers."""
    numbers = [validate_id_number(owner, date.max) for owner in owners]  # rule E1
    row = seeding.CertificateRow(
        cert_no=cert_no,
        district=district,
        issued_on=issued_on,
        invoice_excl_vat_fen=invoice_excl_vat_fen,
        owners=tuple((hash_id_number(n, id_hash_key), mask_id_number(n)) for n in numbers),
        tax_relief_fen=tax_relief_fen,
        property_type=property_type,
        new_build=new_build,
    )
    (certificate_id,) = await seeding.certificates(conn, [row])
    return certificate_id


async def merchant_with_terminal(
    conn: Conn,
    *,
    name: str,
    district: str,
    admitted: bool = True,
    permitted: bool = True,
    label: str = "收银台 1",
) -> TerminalCredential:
    (merchant_id,) = await seeding.merchants(
        conn, [seeding.MerchantRow(name, district, admitted=admitted, permitted=permitted)]
    )
    return await terminal(conn, merchant_id=merchant_id, label=label)


async def terminal(conn: Conn, *, merchant_id: int, label: str) -> TerminalCredential:
    """A terminal and its credential, shown once: only its hash is stored (rule X2)."""
    credential = new_terminal_credential()
    (terminal_id,) = await seeding.terminals(
        conn, [seeding.TerminalRow(merchant_id, label, credential.credential_hash)]
    )
    return TerminalCredential(terminal_id, merchant_id, credential.secret)


async def account(
    conn: Conn,
    *,
    username: str,
    password: str,
    role: str,
    district: str | None = None,
    merchant_id: int | None = None,
) -> int:
    return await parties.create_account(
        conn,
        username=username,
        role=role,
        credential_hash=hash_password(password),
        district=district,
        merchant_id=merchant_id,
    )


# --- the demo command ---------------------------------------------------------------------

DEMO_ID_NUMBER = make_id_number("371502", date(1985, 6, 1), "123")
DEMO_CERTIFICATE = "鲁(2026)聊城市不动产权第0000001号"


DEMO_STAFF = (
    ("demo-city", "city_operator", None),
    ("demo-treasury", "city_operator", None),
    ("demo-district", "district_operator", "dongchangfu"),
)


async def _seed_demo(settings: Settings, saved: dict[str, object] | None) -> dict[str, object]:
    """Idempotent: the demo merchant, terminal and certificate are made once per data folder."""
    conn = await connect(settings.database_url)
    try:
        await migrate(conn)
        for campaign in load_campaigns(settings).values():
            await campaign_db.upsert(conn, campaign)
        if saved is not None:
            return saved
        async with conn.transaction():
            till = await merchant_with_terminal(
                conn, name="东昌府区示范超市", district="dongchangfu"
            )
            await certificate(
                conn,
                cert_no=DEMO_CERTIFICATE,
                district="dongchangfu",
                owners=[DEMO_ID_NUMBER],
                id_hash_key=settings.id_hash_key,
                issued_on=date(2026, 9, 1),
                invoice_excl_vat_fen=120_000_000,
            )
            await account(
                conn,
                username="demo-manager",
                password="demo-manager-password",  # noqa: S106 - demo account
                role="merchant_manager",
                merchant_id=till.merchant_id,
            )
            # rule S1: the district reviews a batch, one city account approves it, another
            # records the payment (no account takes two of these steps)
            for username, role, district in DEMO_STAFF:
                await account(
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


DEMO_QR_KID = "A"


def demo_qr_key(data_dir: Path) -> Path:
    """The demo's QR key, made once and kept (mode 0600) in its data folder: a code shown
    before a restart still verifies after it, as in production (issue 11, item 8)."""
    path = data_dir / f"demo-qr-{DEMO_QR_KID}.key"
    if not path.exists():
        write_qr_key_file(path, QrKey.generate(DEMO_QR_KID))
    return path


def demo(host: str, port: int) -> int:
    """Run the demo until Ctrl-C; the embedded services stop with it."""
    data_dir: Path = default_data_dir() / "demo"
    with services(data_dir=data_dir) as (urls, _pg, _redis):
        env = dict(os.environ)
        env[DATABASE_URL_ENV] = urls.database_url
        env[REDIS_URL_ENV] = urls.redis_url
        secrets_file = data_dir / "demo-secrets.json"
        if secrets_file.exists():
            stored = json.loads(secrets_file.read_text())
        else:
            stored = {
                "VOUCHER_ID_HASH_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
                "VOUCHER_ACCESS_TOKEN_SECRET": base64.b64encode(secrets.token_bytes(32)).decode(),
            }
            secrets_file.write_text(json.dumps(stored))
            secrets_file.chmod(0o600)
        env.update(stored)
        env.setdefault("VOUCHER_QR_KEYS", f"{DEMO_QR_KID}={demo_qr_key(data_dir)}")
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
        json_logging()
        fast_loop()
        run_server(settings, host=host, port=port)
    return 0
