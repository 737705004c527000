"""The operators' load test (run before launch days): seed, drive, measure, check the ledger.

    python -m ops.loadtest --demo-dir .data/demo --concurrency 32 --duration 60
    voucherctl loadtest ...            (the same)

1. Seeds a data set of the chosen size fast, with COPY (server/db/seeding.py: certificates
   with owners, citizens who already claimed, their vouchers, merchants and terminals with
   known credentials). Certificates left unclaimed feed the claim workload.
   Issue 13: developers' sales offices with units in the listing pool, and house tickets of
   a programme (``--ticket-programme``, the demo's ``shangqiu-demo`` by default) issued
   today to ``--tickets`` of those citizens.
2. Drives a mixed workload against the running server at the chosen concurrency for the
   chosen time: claims, QR + quote + redeem, refunds, day lists, and at the sales offices a
   ticket's quote + use on a new contract; live progress each second.
3. Reports throughput, latency p50/p95/p99/max per operation (HdrHistogram), error codes, a
   latency-over-time chart (PNG), as JSON and Markdown.
4. Checks the ledger (server.db.invariants): any violation makes it exit non-zero.

What it seeds is tagged (certificates and merchants named ``LT-<run>-…``), and so is every
bill made with it; ``--clean`` removes all of it afterwards (server/db/seeding.py), so the
next ranking and settlement count real bills only. A server or database out of reach is one
line naming the address tried. ``--server`` defaults to $VOUCHER_SERVER.

Citizens sign in through the server's development identity provider, so the target is a
demo-mode server (the README's demo), never production. Traffic goes to the given URL only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import secrets
import sys
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import aiohttp
from hdrh.histogram import HdrHistogram

from client.citizen import CitizenClient
from client.http import ApiError, BadAnswer, OutcomeUnknown
from client.http import Unreachable as ServerUnreachable
from client.staff import StaffClient
from client.till import TicketContract, TillClient
from ops import demo
from server.auth import new_terminal_credential
from server.db import CONNECT_FAILED, Conn, seeding
from server.db import connect as db_connect
from server.db import tickets as tickets_db
from server.db.invariants import Violation, check_ledger
from shared import rules
from shared.campaign import Campaign
from shared.errors import VoucherError
from shared.house_tickets import FaceItem, Listing, issue_ticket
from shared.idnumber import hash_id_number, make_id_number, mask_id_number
from shared.ticket_campaign import PropertyType

OPERATIONS = ("claim", "qr", "quote", "redeem", "refund", "day", "ticket_quote", "ticket_use")
TAG = seeding.LOAD_TEST_TAG  # what it seeds is named LT-<run>-…: --clean removes it
DEFAULT_MIX = {"claim": 1, "redeem": 8, "refund": 1, "day": 1, "ticket": 1}
WAN = 1_000_000  # 1 万元 in fen
UNITS_PER_OFFICE = 20
UNIT_PRICE_FEN = 500 * WAN  # room for any ticket amount and its subsidy (rule T5)
T = TypeVar("T")


@dataclass
class Config:
    server: str
    database_url: str
    id_hash_key: bytes
    campaign_id: str = "liaocheng-demo"
    certificates: int = 20_000
    preclaimed: float = 0.8
    merchants: int = 100
    terminals: int = 64
    concurrency: int = 32
    duration: float = 30.0
    mix: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_MIX))
    out_dir: Path = Path("loadtest-results")
    seed: int = 0
    quiet: bool = False
    now: datetime | None = None  # the server's "now" when it is not the wall clock (tests)
    # issue 13: house tickets of this programme to this many citizens, at this many offices
    ticket_programme: str = "shangqiu-demo"
    tickets: int = 200
    offices: int = 4


@dataclass
class Seeded:
    claimed: list[str]  # ID numbers of citizens holding vouchers
    unclaimed: deque[tuple[str, str]]  # (certificate number, owner's ID number)
    terminals: list[tuple[int, str]]  # (terminal id, secret)
    seconds: float
    sales: SalesOffices | None = None  # issue 13: None without a ticket workload


@dataclass
class SalesOffices:
    """Issue 13: the developers' tills, their units, the ticket holders and the signing day."""

    terminals: list[tuple[int, str]]
    units: list[str]
    holders: list[str]  # ID numbers of citizens holding a ticket
    today: date


# --- seeding ------------------------------------------------------------------------------


async def seed(conn: Conn, cfg: Config, campaign: Campaign, now: datetime) -> Seeded:
    """COPY through server.db.seeding: no row-by-row round trips."""
    started = time.perf_counter()
    rng = random.Random(cfg.seed)
    run = uuid.uuid4().hex[:8]
    districts = sorted(campaign.issuing_districts & campaign.usable_districts)
    today = rules.local_date(campaign, now)
    issued_to = min(campaign.certificate_issued_to, today)
    window = (issued_to - campaign.certificate_issued_from).days
    if window < 0:
        raise SystemExit(f"campaign {campaign.id} has no certificates issued by {today}")
    people: list[tuple[str, str, str, date, int]] = []
    numbers: set[str] = set()
    while len(people) < cfg.certificates:
        birth = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 50))
        number = make_id_number("371502", birth, f"{rng.randrange(1000):03d}")
        if number in numbers:  # one owner per certificate, one citizen per owner
            continue
        numbers.add(number)
        i = len(people)
        issued = campaign.certificate_issued_from + timedelta(days=rng.randrange(window + 1))
        price = rng.randrange(30_000_000, 300_000_000)  # 300,000 .. 3,000,000 元
        people.append((f"{TAG}{run}-{i:07d}", districts[i % len(districts)], number, issued, price))
    n_claimed = int(cfg.certificates * cfg.preclaimed)
    owners = [(hash_id_number(p[2], cfg.id_hash_key), mask_id_number(p[2])) for p in people]
    credentials = [new_terminal_credential() for _ in range(cfg.terminals)]
    async with conn.transaction():
        certificate_ids = await seeding.certificates(
            conn,
            [
                seeding.CertificateRow(cert_no, district, issued, price, owners=(owner,))
                for (cert_no, district, _, issued, price), owner in zip(people, owners, strict=True)
            ],
        )
        citizen_ids = await seeding.citizens(
            conn, [seeding.CitizenRow(*owner) for owner in owners[:n_claimed]]
        )
        # rules A1-A3, V1: the claims the server would have made, computed by the same rules
        claims = []
        for (cert_no, district, _, issued, price), (id_hash, _), cert_id, citizen_id in zip(
            people, owners, certificate_ids, citizen_ids, strict=False
        ):
            record = rules.CertificateRecord(
                cert_no, district, rules.PropertyType.HOUSING, True, price, 0, issued,
                frozenset({id_hash}),
            )  # fmt: skip
            decision = rules.check_claim(campaign, record, id_hash, now, False)
            claims.append(
                seeding.ClaimRow(
                    campaign.id, cert_id, citizen_id, decision.base_fen, decision.rate_bp,
                    decision.voucher_count, campaign.face_value_fen, now, decision.expires_at,
                )
            )  # fmt: skip
        await seeding.claims(conn, claims)
        merchant_ids = await seeding.merchants(
            conn,
            [
                seeding.MerchantRow(f"{TAG}{run}-{g}", districts[g % len(districts)])
                for g in range(1, cfg.merchants + 1)
            ],
        )
        terminal_ids = await seeding.terminals(
            conn,
            [
                seeding.TerminalRow(
                    merchant_ids[g % len(merchant_ids)], f"LT till {g + 1}", c.credential_hash
                )
                for g, c in enumerate(credentials)
            ],
        )
        terminals = [(t, c.secret) for t, c in zip(terminal_ids, credentials, strict=True)]
        holders = [(p[2], o[0]) for p, o in zip(people[:n_claimed], owners, strict=False)]
        sales = await seed_sales(conn, cfg, run, holders[: cfg.tickets], rng, now)
    await seeding.analyze(conn)
    return Seeded(
        claimed=[p[2] for p in people[:n_claimed]],
        unclaimed=deque((p[0], p[2]) for p in people[n_claimed:]),
        terminals=terminals,
        seconds=time.perf_counter() - started,
        sales=sales,
    )


async def seed_sales(
    conn: Conn,
    cfg: Config,
    run: str,
    holders: list[tuple[str, bytes]],
    rng: random.Random,
    now: datetime,
) -> SalesOffices | None:
    """Issue 13 (rules T1, T4): developers with a sales-office till each and their units in
    the pool, and a ticket of 50-200 万元 issued today to each holder (ID number, ID hash),
    as the programme the server recorded in the ledger says."""
    if not cfg.tickets or not holders or not cfg.offices:
        return None
    programme = await tickets_db.stored_programme(conn, cfg.ticket_programme)
    if programme is None:
        raise SystemExit(
            f"the server runs no house-ticket programme {cfg.ticket_programme}: "
            "name one with --ticket-programme, or --tickets 0"
        )
    today = now.astimezone(programme.tz).date()
    if not programme.issuance_opens <= today <= programme.issuance_closes:
        raise SystemExit(f"{programme.id} issues no ticket on {today}: --tickets 0")
    district = sorted(programme.usable_districts)[0]
    credentials = [new_terminal_credential() for _ in range(cfg.offices)]
    offices = await seeding.merchants(
        conn,
        [
            seeding.MerchantRow(f"{TAG}{run}-D{g}", district, kind="developer")
            for g in range(1, cfg.offices + 1)
        ],
    )
    tills = await seeding.terminals(
        conn,
        [
            seeding.TerminalRow(m, f"LT office {g}", c.credential_hash)
            for g, (m, c) in enumerate(zip(offices, credentials, strict=True), start=1)
        ],
    )
    units = [f"U{u:03d}" for u in range(UNITS_PER_OFFICE)]
    for merchant_id in offices:
        for unit in units:
            await tickets_db.insert_listing(
                conn,
                programme.id,
                Listing(str(merchant_id), unit, district, PropertyType.RESIDENTIAL, 10_000,
                        UNIT_PRICE_FEN, in_pool=True),
            )  # fmt: skip
    ids = await tickets_db.new_ticket_ids(conn, len(holders))
    item = next(iter(programme.face_items))
    tickets = [
        issue_ticket(
            programme,
            demo.issue_request(
                programme,
                number=f"{TAG}{run}-T{i:06d}",
                holder=id_hash.hex(),  # the person key (docs/HOUSE_TICKETS.md)
                issued_on=today,
                items=(FaceItem(item, rng.randrange(50, 201) * WAN),),
                area_dm2=10_000 if programme.ticket_area_required else None,
            ),
            ticket_id=ticket_id,
            issued_on=today,
        )
        for i, ((_, id_hash), ticket_id) in enumerate(zip(holders, ids, strict=True))
    ]
    await tickets_db.insert_tickets(conn, tickets, actor="loadtest", act="issue", documents={})
    return SalesOffices(
        terminals=[(t, c.secret) for t, c in zip(tills, credentials, strict=True)],
        units=units,
        holders=[number for number, _ in holders],
        today=today,
    )


# --- the workload -------------------------------------------------------------------------


class Stats:
    def __init__(self) -> None:
        self.hist = {op: HdrHistogram(1, 60_000_000, 3) for op in OPERATIONS}  # µs
        self.per_second: dict[int, dict[str, HdrHistogram]] = defaultdict(dict)
        self.count: Counter[str] = Counter()
        self.errors: Counter[tuple[str, str]] = Counter()
        self.started = time.perf_counter()

    def record(self, op: str, seconds: float, error: str | None = None) -> None:
        micros = max(1, int(seconds * 1_000_000))
        self.hist[op].record_value(micros)
        second = int(time.perf_counter() - self.started)
        bucket = self.per_second[second].setdefault(op, HdrHistogram(1, 60_000_000, 3))
        bucket.record_value(micros)
        self.count[op] += 1
        if error:
            self.errors[(op, error)] += 1


class Worker:
    """One till and the citizens it serves, over the one API client (``client/``): the till's
    ``TillClient`` sends each request once (``retries=0``: the load test counts what the
    server answered), the citizens' ``CitizenClient`` claims and shows QR codes. Every
    client shares the run's connection pool."""

    def __init__(
        self, cfg: Config, session: aiohttp.ClientSession, stats: Stats, seeded: Seeded, idx: int
    ) -> None:
        self.cfg = cfg
        self.session = session
        self.stats = stats
        self.seeded = seeded
        terminal_id, secret = seeded.terminals[idx % len(seeded.terminals)]
        self.till = TillClient(cfg.server, terminal_id, secret, retries=0, session=session)
        self.rng = random.Random(cfg.seed + idx)
        self.mine: deque[tuple[int, int]] = deque(maxlen=200)  # (redemption id, bill)
        self.citizens: dict[str, CitizenClient] = {}
        self.office: TillClient | None = None  # a sales office's till (issue 13)
        if seeded.sales is not None:
            office_id, office_secret = seeded.sales.terminals[idx % len(seeded.sales.terminals)]
            self.office = TillClient(
                cfg.server, office_id, office_secret, retries=0, session=session
            )

    async def timed(self, op: str, call: Awaitable[T]) -> T | None:
        """One call, its latency and its error code (the server's, or the failure's kind)."""
        started = time.perf_counter()
        error: str | None = None
        try:
            return await call
        except ApiError as exc:
            error = exc.code
        except (ServerUnreachable, OutcomeUnknown, BadAnswer) as exc:
            error = type(exc).__name__
        finally:
            self.stats.record(op, time.perf_counter() - started, error)
        return None

    async def citizen(self, id_number: str) -> CitizenClient:
        known = self.citizens.get(id_number)
        if known is not None:
            return known
        citizen = CitizenClient(self.cfg.server, session=self.session)
        try:
            await citizen.sign_in_demo(id_number)
        except ApiError as exc:
            if exc.code == "no_dev_idp":
                raise SystemExit(
                    "the server has no development identity provider: run the demo"
                ) from exc
            raise
        self.citizens[id_number] = citizen
        return citizen

    async def claim(self) -> None:
        if not self.seeded.unclaimed:
            return await self.redeem()
        cert_no, number = self.seeded.unclaimed.popleft()
        citizen = await self.citizen(number)
        if await self.timed("claim", citizen.claim(cert_no)) is not None:
            self.seeded.claimed.append(number)
        return None

    async def redeem(self) -> None:
        citizen = await self.citizen(self.rng.choice(self.seeded.claimed))
        qr = await self.timed("qr", citizen.qr())
        if qr is None:
            return
        bill = self.rng.randrange(200, 1_200) * 100
        quote = await self.timed("quote", self.till.quote(qr.token, bill))
        if quote is None or quote.usable_count == 0:
            return
        count = self.rng.randint(1, quote.usable_count)
        receipt_no = f"LT-{uuid.uuid4().hex[:16]}"
        done = await self.timed("redeem", self.till.redeem(qr.token, bill, receipt_no, count))
        if done is not None:
            self.mine.append((done.redemption_id, bill))

    async def refund(self) -> None:
        if not self.mine:
            return await self.redeem()
        redemption_id, bill = self.mine.popleft()
        remaining = 0 if self.rng.random() < 0.5 else self.rng.randrange(0, bill // 100) * 100
        await self.timed("refund", self.till.refund(redemption_id, remaining))
        return None

    async def day(self) -> None:
        await self.timed("day", self.till.day())

    async def ticket(self) -> None:
        """Issue 13 (rules T5-T7): a holder's code, a new contract at a sales office, the
        quote, then a use of part of what it allows (up to 40 万元: a ticket pays several)."""
        sales = self.seeded.sales
        if sales is None or self.office is None:
            return await self.redeem()
        citizen = await self.citizen(self.rng.choice(sales.holders))
        qr = await self.timed("qr", citizen.qr())
        if qr is None:
            return None
        contract = TicketContract(
            f"{TAG}{uuid.uuid4().hex[:16]}", self.rng.choice(sales.units), sales.today,
            UNIT_PRICE_FEN,
        )  # fmt: skip
        quote = await self.timed("ticket_quote", self.office.ticket_quote(qr.token, contract))
        if quote is None:
            return None
        line = quote.lines[0]
        amount = max(line.min_fen, min(line.max_fen, self.rng.randrange(1, 41) * WAN))
        await self.timed("ticket_use", self.office.use_ticket(qr.token, contract, [amount]))
        return None

    async def run(self, until: float) -> None:
        await self.till.sign_in()
        if self.office is not None:
            await self.office.sign_in()
        ops = [op for op, weight in self.cfg.mix.items() for _ in range(weight)]
        actions = {
            "claim": self.claim,
            "redeem": self.redeem,
            "refund": self.refund,
            "day": self.day,
            "ticket": self.ticket,
        }
        while time.perf_counter() < until:
            await actions[self.rng.choice(ops)]()


async def progress(stats: Stats, until: float, quiet: bool) -> None:
    last = Counter(stats.count)
    while time.perf_counter() < until:
        await asyncio.sleep(1)
        now = Counter(stats.count)
        if not quiet:
            rate = {op: now[op] - last[op] for op in OPERATIONS if now[op] - last[op]}
            errors = sum(stats.errors.values())
            elapsed = time.perf_counter() - stats.started
            print(
                f"[{elapsed:5.0f}s] per second: {dict(rate)}  errors so far: {errors}", flush=True
            )
        last = now


# --- reporting ----------------------------------------------------------------------------


def summary(stats: Stats, elapsed: float) -> dict[str, Any]:
    ops = {}
    for op, hist in stats.hist.items():
        if not stats.count[op]:
            continue
        ops[op] = {
            "count": stats.count[op],
            "per_second": round(stats.count[op] / elapsed, 1),
            "p50_ms": hist.get_value_at_percentile(50) / 1000,
            "p95_ms": hist.get_value_at_percentile(95) / 1000,
            "p99_ms": hist.get_value_at_percentile(99) / 1000,
            "max_ms": hist.get_max_value() / 1000,
        }
    return {
        "elapsed_s": round(elapsed, 2),
        "operations": ops,
        "errors": [
            {"operation": op, "code": code, "count": n}
            for (op, code), n in stats.errors.most_common()
        ],
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Load test",
        "",
        f"Command: `{result['command']}`  ",
        f"Seeded in {result['seed_seconds']:.1f} s; ran {result['elapsed_s']} s "
        f"at concurrency {result['concurrency']}.",
        "",
        "| operation | count | per second | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for op, o in result["operations"].items():
        lines.append(
            f"| {op} | {o['count']} | {o['per_second']} | {o['p50_ms']:.1f} | {o['p95_ms']:.1f} "
            f"| {o['p99_ms']:.1f} | {o['max_ms']:.1f} |"
        )
    lines += ["", "| operation | error code | count |", "|---|---|---:|"]
    lines += [f"| {e['operation']} | {e['code']} | {e['count']} |" for e in result["errors"]]
    lines += ["", "## Ledger check", ""]
    if result["violations"]:
        lines += [
            f"- **{v['check']}** ({v['count']}): {v['meaning']}" for v in result["violations"]
        ]
    else:
        lines.append(
            "All invariants hold: no voucher redeemed twice, every redemption's value "
            "equals its vouchers, refunds restored exactly what they recorded; every house "
            "ticket's accounts add up, its uses equal its draws, no use pays above its price."
        )
    return "\n".join(lines) + "\n"


def chart(stats: Stats, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 4.5), dpi=100)
    axes = figure.subplots()
    seconds = sorted(stats.per_second)
    for op in ("redeem", "quote", "claim", "refund", "ticket_use"):
        points = [(s, stats.per_second[s][op]) for s in seconds if op in stats.per_second[s]]
        if points:
            axes.plot(
                [s for s, _ in points],
                [h.get_value_at_percentile(99) / 1000 for _, h in points],
                label=f"{op} p99",
            )
            axes.plot(
                [s for s, _ in points],
                [h.get_value_at_percentile(50) / 1000 for _, h in points],
                "--",
                label=f"{op} p50",
            )
    axes.set_xlabel("seconds")
    axes.set_ylabel("latency (ms)")
    axes.set_title("Latency over time")
    axes.legend(loc="upper right", fontsize="small")
    figure.savefig(path, format="png")


# --- running it ---------------------------------------------------------------------------


async def check_only(database_url: str) -> list[Violation]:
    conn = await _connect(database_url)
    try:
        return await check_ledger(conn)
    finally:
        await conn.close()


class Unreachable(Exception):
    """The server or the database is not there: one line for the operator, no traceback."""


def _address(database_url: str) -> str:
    """The database's address without its password."""
    parts = urlsplit(database_url)
    host = parts.hostname or parse_qs(parts.query).get("host", ["local socket"])[0]
    return f"{host}{':' + str(parts.port) if parts.port else ''}{parts.path}"


async def _connect(database_url: str) -> Conn:
    try:
        return await db_connect(database_url, connect_timeout=10)
    except CONNECT_FAILED as exc:
        raise Unreachable(f"cannot reach the database at {_address(database_url)}: {exc}") from exc


async def _campaigns(http: aiohttp.ClientSession, server: str) -> dict[str, Campaign]:
    try:
        return (await StaffClient(server, session=http).campaigns()).parsed()
    except (ApiError, ServerUnreachable, BadAnswer, VoucherError) as exc:
        reason = str(exc) or type(exc).__name__
        raise Unreachable(
            f"cannot reach the server at {server} ({reason}); start it "
            "(python3 scripts/dev.py demo) or name it with --server or VOUCHER_SERVER"
        ) from exc


async def clean(database_url: str) -> dict[str, int]:
    """Remove what every load test seeded in this database, and the bills made with it."""
    conn = await _connect(database_url)
    try:
        return await seeding.remove_tagged(conn, TAG)
    finally:
        await conn.close()


async def prepare(cfg: Config, http: aiohttp.ClientSession) -> Seeded:
    """The server's campaign, and the data set seeded for it."""
    campaigns = await _campaigns(http, cfg.server)
    if cfg.campaign_id not in campaigns:
        raise SystemExit(f"the server has no campaign {cfg.campaign_id}")
    campaign = campaigns[cfg.campaign_id]
    conn = await _connect(cfg.database_url)
    try:
        return await seed(conn, cfg, campaign, cfg.now or datetime.now(UTC))
    finally:
        await conn.close()


async def seed_only(cfg: Config) -> dict[str, Any]:
    """Seed, and the data set as JSON, for another driver of the same workload (the Locust
    file, ops/locustfile.py, whose master hands it to its workers)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        seeded = await prepare(cfg, http)
    return {
        "claimed": seeded.claimed,
        "unclaimed": list(seeded.unclaimed),
        "terminals": seeded.terminals,
        "seconds": seeded.seconds,
    }


async def run(cfg: Config, command: str) -> int:
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=cfg.concurrency * 2),
        timeout=aiohttp.ClientTimeout(total=30),
    ) as http:
        seeded = await prepare(cfg, http)
        if not cfg.quiet:
            tickets = len(seeded.sales.holders) if seeded.sales else 0
            print(
                f"seeded {cfg.certificates} certificates, {len(seeded.claimed)} claimed, "
                f"{len(seeded.terminals)} terminals, {tickets} house tickets in "
                f"{seeded.seconds:.1f} s",
                flush=True,
            )
        stats = Stats()
        until = time.perf_counter() + cfg.duration
        workers = [Worker(cfg, http, stats, seeded, i) for i in range(cfg.concurrency)]
        await asyncio.gather(progress(stats, until, cfg.quiet), *(w.run(until) for w in workers))
        elapsed = time.perf_counter() - stats.started
    violations = await check_only(cfg.database_url)
    result = {
        "command": command,
        "concurrency": cfg.concurrency,
        "seed_seconds": seeded.seconds,
        **summary(stats, elapsed),
        "violations": [
            {"check": v.check, "meaning": v.meaning, "count": v.count, "examples": v.examples}
            for v in violations
        ],
    }
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    (cfg.out_dir / "results.json").write_text(json.dumps(result, indent=2, default=str))
    (cfg.out_dir / "results.md").write_text(markdown(result))
    chart(stats, cfg.out_dir / "latency.png")
    if not cfg.quiet:
        print(markdown(result))
        print(f"results in {cfg.out_dir}/results.json, results.md and latency.png")
        print("its data stays in the ledger until: scripts/loadtest --clean (same --demo-dir)")
    return 1 if violations else 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="loadtest", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--server",
        default=os.environ.get("VOUCHER_SERVER", "http://127.0.0.1:8080"),
        help="the demo server (default: $VOUCHER_SERVER or http://127.0.0.1:8080)",
    )
    p.add_argument(
        "--demo-dir", type=Path, help="take the database URL and ID hash key of the README's demo"
    )
    p.add_argument("--database-url")
    p.add_argument("--id-hash-key-b64")
    p.add_argument("--campaign", default="liaocheng-demo")
    p.add_argument("--certificates", type=int, default=20_000)
    p.add_argument("--preclaimed", type=float, default=0.8)
    p.add_argument("--merchants", type=int, default=100)
    p.add_argument("--terminals", type=int, default=64)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--duration", type=float, default=30.0, help="seconds of load (at most 3600)")
    p.add_argument("--mix", default="claim=1,redeem=8,refund=1,day=1,ticket=1")
    p.add_argument(
        "--ticket-programme",
        default="shangqiu-demo",
        help="the house-ticket programme of the ticket workload (issue 13)",
    )
    p.add_argument("--tickets", type=int, default=200, help="house tickets to issue (0: none)")
    p.add_argument("--offices", type=int, default=4, help="developers' sales offices to seed")
    p.add_argument("--out", type=Path, default=Path("loadtest-results"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--check-only", action="store_true", help="only check the ledger's invariants")
    p.add_argument(
        "--seed-only",
        type=Path,
        metavar="FILE",
        help="only seed, and write the data set to FILE as JSON (the Locust file's master does)",
    )
    p.add_argument(
        "--now", help="the server's time (ISO 8601) when it is not the wall clock: test servers"
    )
    p.add_argument(
        "--clean",
        action="store_true",
        help="remove what load tests seeded (LT-… certificates and merchants) and their bills",
    )
    return p


def config_from(args: argparse.Namespace) -> Config:
    database_url, key_b64 = args.database_url, args.id_hash_key_b64
    if args.demo_dir:
        services = json.loads((args.demo_dir / "demo-services.json").read_text())
        keys = json.loads((args.demo_dir / "demo-secrets.json").read_text())
        database_url = database_url or services["database_url"]
        key_b64 = key_b64 or keys["VOUCHER_ID_HASH_KEY"]
    if not database_url:
        raise SystemExit("--database-url (or --demo-dir) is needed")
    if not (args.check_only or args.clean) and not key_b64:
        raise SystemExit("--id-hash-key-b64 (or --demo-dir) is needed to seed")
    mix = {}
    for part in args.mix.split(","):
        op, _, weight = part.partition("=")
        if op not in DEFAULT_MIX or not weight.isdigit():
            raise SystemExit(
                f"--mix takes {','.join(DEFAULT_MIX)} with whole weights, not {part!r}"
            )
        mix[op] = int(weight)
    if not 0 < args.duration <= 3600 or not 0 < args.concurrency <= 1024:
        raise SystemExit("--duration is 0..3600 s and --concurrency 1..1024")
    return Config(
        server=args.server.rstrip("/"),
        database_url=database_url,
        id_hash_key=base64.b64decode(key_b64) if key_b64 else b"",
        campaign_id=args.campaign,
        certificates=args.certificates,
        preclaimed=args.preclaimed,
        merchants=args.merchants,
        terminals=args.terminals,
        concurrency=args.concurrency,
        duration=args.duration,
        mix=mix,
        out_dir=args.out,
        seed=args.seed or secrets.randbelow(2**31),
        quiet=args.quiet,
        ticket_programme=args.ticket_programme,
        tickets=args.tickets,
        offices=args.offices,
        now=datetime.fromisoformat(args.now) if args.now else None,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    cfg = config_from(args)
    try:
        return _main(args, cfg, argv)
    except Unreachable as exc:
        print(f"loadtest: {exc}", file=sys.stderr)
        return 2
    except seeding.TaggedDataSettled as exc:
        print(f"loadtest: not cleaned: {exc}", file=sys.stderr)
        return 1


def _main(args: argparse.Namespace, cfg: Config, argv: list[str]) -> int:
    if args.clean:
        removed = asyncio.run(clean(cfg.database_url))
        print("removed: " + ", ".join(f"{n} {table}" for table, n in removed.items() if n))
        return 0
    if args.seed_only:
        args.seed_only.write_text(json.dumps(asyncio.run(seed_only(cfg))))
        return 0
    if args.check_only:
        violations = asyncio.run(check_only(cfg.database_url))
        for v in violations:
            print(f"VIOLATION {v.check} ({v.count}): {v.meaning}: {v.examples}")
        if not violations:
            print("ledger check: all invariants hold")
        return 1 if violations else 0
    return asyncio.run(run(cfg, "loadtest " + " ".join(argv)))


if __name__ == "__main__":
    sys.exit(main())
