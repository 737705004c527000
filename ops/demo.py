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
from datetime import date, datetime
from pathlib import Path

from ops.embedded import DATABASE_URL_ENV, REDIS_URL_ENV, default_data_dir, services
from server.app import load_campaigns
from server.auth import hash_password, new_terminal_credential
from server.campaign_files import load_ticket_campaign_files
from server.db import Conn, connect, parties, seeding
from server.db import campaigns as campaign_db
from server.db import tickets as tickets_db
from server.db.migrate import migrate
from server.process import fast_loop, json_logging, run_server
from server.settings import Settings, write_qr_key_file
from shared.house_tickets import FaceItem, IssueRequest, Listing, Project, Ticket, issue_ticket
from shared.idnumber import hash_id_number, make_id_number, mask_id_number, validate_id_number
from shared.ticket_campaign import PropertyType, TicketCampaign
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
    kind: str = "shop",
) -> TerminalCredential:
    """A merchant (a shop, or a developer whose sales office takes house tickets, rule T4)
    and one terminal."""
    row = seeding.MerchantRow(name, district, admitted=admitted, permitted=permitted, kind=kind)
    (merchant_id,) = await seeding.merchants(conn, [row])
    return await terminal(conn, merchant_id=merchant_id, label=label)


async def terminal(conn: Conn, *, merchant_id: int, label: str) -> TerminalCredential:
    """A terminal and its credential, shown once: only its hash is stored (rule X2)."""
    credential = new_terminal_credential()
    (terminal_id,) = await seeding.terminals(
        conn, [seeding.TerminalRow(merchant_id, label, credential.credential_hash)]
    )
    return TerminalCredential(terminal_id, merchant_id, credential.secret)


async def listing(
    conn: Conn,
    campaign_id: str,
    *,
    merchant_id: int,
    unit: str,
    district: str,
    property_type: PropertyType = PropertyType.RESIDENTIAL,
    area_dm2: int = 10_000,
    price_fen: int,
    admitted: bool = True,
) -> int:
    """Rule T4: a developer's unit in the listing pool (admitted by the housing bureau)."""
    unit_row = Listing(
        str(merchant_id), unit, district, property_type, area_dm2, price_fen, in_pool=admitted
    )
    return await tickets_db.insert_listing(conn, campaign_id, unit_row)


def person_key(id_number: str, id_hash_key: bytes) -> str:
    """A person as house tickets name one: the hex of the ID number's keyed hash (rule X3,
    docs/HOUSE_TICKETS.md), so no full ID number is held."""
    return hash_id_number(validate_id_number(id_number, date.max), id_hash_key).hex()


def issue_request(
    campaign: TicketCampaign,
    *,
    number: str,
    holder: str,
    issued_on: date,
    items: tuple[FaceItem, ...],
    household: frozenset[str] = frozenset(),
    area_dm2: int | None = None,
    district: str | None = None,
    validity_months: int | None = None,
) -> IssueRequest:
    """Rule T1: what an issuer enters for a ticket to ``holder`` (a person key), with made-up
    documents' numbers derived from the ticket's (the demo, the load test)."""
    return IssueRequest(
        number=number,
        filing_no=f"BA-{number}",
        district=district or sorted(campaign.issuing_districts)[0],
        project=Project("示范片区房屋征收项目", housing_delivered=False, cash_paid=False),
        implementing_unit="房屋征收实施单位",
        official="经办人",
        agreement_no=f"XY-{number}",
        agreement_date=issued_on,
        holder=holder,
        household=frozenset(household | {holder})
        if household or campaign.household_required
        else frozenset(),
        area_dm2=area_dm2,
        items=items,
        validity_months=validity_months,
    )


async def house_ticket(
    conn: Conn,
    campaign: TicketCampaign,
    *,
    number: str,
    holder_id_number: str,
    id_hash_key: bytes,
    issued_on: date,
    items: tuple[FaceItem, ...],
    household: tuple[str, ...] = (),
    area_dm2: int | None = None,
) -> Ticket:
    """Rules T1, T2: a ticket issued as an issuer would, audited (act ``issue``): the holder
    and the household members given by ID number (kept as person keys)."""
    request = issue_request(
        campaign,
        number=number,
        holder=person_key(holder_id_number, id_hash_key),
        issued_on=issued_on,
        items=items,
        household=frozenset(person_key(n, id_hash_key) for n in household),
        area_dm2=area_dm2,
    )
    (ticket_id,) = await tickets_db.new_ticket_ids(conn, 1)
    ticket = issue_ticket(campaign, request, ticket_id=ticket_id, issued_on=issued_on)
    await tickets_db.insert_tickets(
        conn, [ticket], actor="demo", act="issue", documents={"agreement_no": request.agreement_no}
    )
    return ticket


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
    """Idempotent: the demo merchant, terminal and certificate are made once per data folder,
    and so is the sales office with its house ticket (added to a folder made before)."""
    conn = await connect(settings.database_url)
    try:
        await migrate(conn)
        for campaign in load_campaigns(settings).values():
            await campaign_db.upsert(conn, campaign)
        programmes = load_ticket_campaign_files(settings.ticket_campaign_files)
        for programme in programmes.values():
            await tickets_db.upsert_programme(conn, programme)
        data = saved if saved is not None else await _seed_shop(conn, settings)
        if "sales_office" not in data and DEMO_PROGRAMME in programmes:
            office = await _seed_sales_office(conn, settings, programmes[DEMO_PROGRAMME])
            data = {**data, "sales_office": office}
        return data
    finally:
        await conn.close()


async def _seed_shop(conn: Conn, settings: Settings) -> dict[str, object]:
    async with conn.transaction():
        till = await merchant_with_terminal(conn, name="东昌府区示范超市", district="dongchangfu")
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
    return {
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


# issue 13: a developer's sales office in 梁园区 and a Shangqiu ticket of the demo citizen's, on
# the demo copy of the programme (shangqiu-2025 issued its last tickets on 2025-06-30)
DEMO_PROGRAMME = "shangqiu-demo"
DEMO_TICKET = "商房票(2026)0000001"
DEMO_UNITS = (
    ("1-101", PropertyType.RESIDENTIAL, 12_000, 200_000_000),  # 120.00 m², 200 万元
    ("1-102", PropertyType.RESIDENTIAL, 8_957, 150_000_000),  # 89.57 m², 150 万元
    ("B1-023", PropertyType.PARKING, 1_250, 15_000_000),  # a parking space, 15 万元
)


async def _seed_sales_office(
    conn: Conn, settings: Settings, programme: TicketCampaign
) -> dict[str, object]:
    """Rules T1, T4: the developer, its till, its units in the pool, and a ticket of 100 万元
    (90 万 compensation, 10 万 policy reward) issued today to the demo citizen."""
    today = datetime.now(programme.tz).date()
    issued_on = min(max(today, programme.issuance_opens), programme.issuance_closes)
    async with conn.transaction():
        office = await merchant_with_terminal(
            conn, name="商丘示范置业有限公司", district="liangyuan", label="售楼处 1",
            kind="developer",
        )  # fmt: skip
        for unit, kind, area_dm2, price_fen in DEMO_UNITS:
            await listing(
                conn,
                programme.id,
                merchant_id=office.merchant_id,
                unit=unit,
                district="liangyuan",
                property_type=kind,
                area_dm2=area_dm2,
                price_fen=price_fen,
            )
        ticket = await house_ticket(
            conn,
            programme,
            number=DEMO_TICKET,
            holder_id_number=DEMO_ID_NUMBER,
            id_hash_key=settings.id_hash_key,
            issued_on=issued_on,
            items=(FaceItem("compensation", 90_000_000), FaceItem("policy_reward", 10_000_000)),
        )
    return {
        "terminal_id": office.terminal_id,
        "terminal_secret": office.secret,
        "merchant_id": office.merchant_id,
        "programme": programme.id,
        "ticket_number": ticket.number,
        "ticket_issued_on": ticket.issued_on.isoformat(),
        "ticket_deadline": ticket.deadline.isoformat(),
        "units": [unit for unit, *_ in DEMO_UNITS],
    }


def _ticket_of(info: dict[str, object]) -> str:
    office = info.get("sales_office")
    if not isinstance(office, dict):
        return "(none: no shangqiu-demo programme is served)"
    return f"{office['ticket_number']}, 100 万元, valid to {office['ticket_deadline']}"


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
        if info != saved:
            credentials_file.write_text(json.dumps(info, ensure_ascii=False, indent=2))
            credentials_file.chmod(0o600)
        office = info.get("sales_office")
        office_file = data_dir / "demo-sales-office.json"  # the sales office's --pair file
        if isinstance(office, dict):
            office_file.write_text(json.dumps(office, ensure_ascii=False, indent=2))
            office_file.chmod(0o600)
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
   House tickets (房票, issue 13): the demo citizen holds Shangqiu ticket {_ticket_of(info)}
     Sales office's terminal (a developer's till: contract, scan, quote, F9):
       .venv/bin/python -m terminal --server {base} --pair {office_file} \\
           --config {data_dir}/sales-office-terminal.json   (its own config: the shop's stays)
""",
            flush=True,
        )
        json_logging()
        fast_loop()
        run_server(settings, host=host, port=port)
    return 0
