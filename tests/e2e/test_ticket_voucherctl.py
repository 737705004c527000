"""voucherctl's house-ticket commands against a real server on a real port (issue 13, rules
T1-T14): the housing bureau files a developer and its units, the issuer issues and acts on
tickets, records a contract's conditions, settles and cashes out, and reads the report in
Chinese. ID numbers travel in the agreement's file or on standard input, never as arguments
(X3)."""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ops import demo as seed
from server.app import create_app
from server.settings import Settings
from tests.e2e.conftest import Clock, World, new_id_number, shanghai
from tests.e2e.test_voucherctl import Ctl
from tests.e2e.tickets_world import WAN, Tickets, programme_copies, serving, units_csv


@pytest.fixture
async def setup(
    aiohttp_server: Any,
    aiohttp_client: Any,
    settings: Settings,
    clock: Clock,
    db_pool: asyncpg.Pool,
    tmp_path: Path,
    monkeypatch: Any,
) -> tuple[Tickets, Any]:
    clock.now = shanghai(2024, 9, 10, 10)
    copies = programme_copies(tmp_path)
    served = serving(settings, copies, tmp_path)
    server = await aiohttp_server(create_app(served, clock=clock))
    client = await aiohttp_client(create_app(served, clock=clock))
    monkeypatch.setenv("VOUCHER_PASSWORD", "cli password")
    return Tickets(World(client, settings, db_pool), clock, *copies), server


async def ctl_as(t: Tickets, server: Any, role: str, district: str | None = None) -> Ctl:
    username = f"{role[:6]}-{new_id_number()[-10:]}".replace("_", "-").lower()
    async with t.world.pool.acquire() as conn:
        await seed.account(
            conn, username=username, password="cli password", role=role, district=district
        )
    return Ctl(str(server.make_url("")), username)


async def test_the_housing_bureau_files_a_developer_and_admits_its_units(
    setup: tuple[Tickets, Any], tmp_path: Path
) -> None:
    # T4: a developer added and admitted by the bureau; its GBK file imported; units admitted
    t, server = setup
    bureau = await ctl_as(t, server, "housing_bureau")
    code, out = await bureau("--json", "developers", "add", "梁园置业", "梁园区")
    assert code == 0, out
    merchant_id = json.loads(out)["id"]
    code, out = await bureau("merchants", "admit", str(merchant_id), "--reason", "住建局审核")
    assert code == 0, out
    path = tmp_path / "units.csv"
    path.write_bytes(
        units_csv(
            [("1-101", "梁园区", "住宅", "120.5", "1500000"), ("9-9", "船山区", "住宅", "1", "1")]
        )
    )
    args = ("listings", "import", str(path), "--campaign", t.sq.id, "--merchant", str(merchant_id))
    code, out = await bureau(*args)
    assert code == 1  # a rejected row fails the exit code, as the registry import does
    assert "新增 1" in out and "退回 1（gbk）" in out and "不在本房票可用的区域内" in out
    code, out = await bureau(
        "--json", "listings", "list", t.sq.id, "--merchant-id", str(merchant_id)
    )
    (unit,) = json.loads(out)["units"]
    assert (unit["status"], unit["area_dm2"]) == ("pending", 12_050)
    code, out = await bureau("listings", "admit", str(unit["id"]), "--reason", "备案价核实")
    assert code == 0 and "已入库" in out
    code, out = await bureau("listings", "list", t.sq.id, "--merchant-id", str(merchant_id))
    assert "1,500,000.00" in out and "120.50" in out


async def test_an_issuer_issues_settles_and_reports_from_the_command_line(
    setup: tuple[Tickets, Any], tmp_path: Path, monkeypatch: Any
) -> None:
    # T1 (issue from the agreement's file), T3 (a refusal's words), T12, T9, T14
    t, server = setup
    issuer = await ctl_as(t, server, "ticket_issuer", "liangyuan")
    holder = new_id_number()
    agreement = tmp_path / "agreement.json"
    agreement.write_text(json.dumps(t.agreement(t.sq, holder=holder)), encoding="utf-8")
    code, out = await issuer("--json", "tickets", "issue", str(agreement))
    assert code == 0, out
    made = json.loads(out)
    ticket_id, number = made["ticket"]["id"], made["ticket"]["number"]
    assert holder not in out
    code, out = await issuer("tickets", "find", number)
    assert code == 0 and f"房票 {number}" in out and "票面 1,000,000.00 元" in out
    monkeypatch.setattr("sys.stdin", io.StringIO(new_id_number() + "\n\n"))
    code, out = await issuer(
        "tickets", "transfer", str(ticket_id), "--notary-no", "GZ-1", "--home-in-city",
        "--all-members-signed",
    )  # fmt: skip
    assert code == 1 and "ticket_transfer_refused" in out  # T3: no transfer in Shangqiu
    office = await t.office(t.sq, [("A-1", "住宅", "100", "2000000")])
    use_id = await t.use(
        office, [ticket_id], "A-1", buyer=holder, price=200 * WAN, signed_on=date(2024, 9, 10),
        amounts=[95 * WAN],
    )  # fmt: skip
    code, out = await issuer(
        "ticket-uses", "condition", str(use_id), "filed", "--on", "2024-09-10",
        "--document-no", "BA-88",
    )  # fmt: skip
    assert code == 0 and "BA-88" in out
    code, out = await issuer("ticket-settlements", "build", t.sq.id, "梁园区", "2024-09-10")
    assert code == 0, out
    assert "全额" in out and "1,045,000.00" in out  # 95万 and its 10% subsidy
    code, out = await issuer("tickets", "cashout", str(ticket_id), "--application-no", "DX-1")
    assert code == 0 and "已兑付 50,000.00 元" in out
    code, out = await issuer("--json", "payouts", "list", t.sq.id, "--unpaid")
    (payout,) = json.loads(out)["payouts"]
    code, out = await issuer("payouts", "pay", str(payout["id"]), "--payment-no", "ZF-1")
    assert code == 0 and "ZF-1" in out
    code, out = await issuer("reports", "tickets", t.sq.id)
    assert code == 0
    for words in ("房票统计", "核发张数", "已使用金额", "结余兑付金额", "全市", "梁园区"):
        assert words in out, words
    target = tmp_path / "report.csv"
    code, out = await issuer("reports", "tickets", t.sq.id, "--format", "csv", "-o", str(target))
    assert target.read_bytes().decode("utf-8-sig").startswith("范围,名称,核发张数")


async def test_a_suining_issuer_records_a_home_kept_from_the_command_line(
    setup: tuple[Tickets, Any], tmp_path: Path
) -> None:
    # T4 (Suining) [choice]: `tickets home-kept ID --document-no ...`; once only
    t, server = setup
    t.clock.now = shanghai(2025, 10, 9, 10)
    issuer = await ctl_as(t, server, "ticket_issuer", "chuanshan")
    agreement = tmp_path / "agreement.json"
    agreement.write_text(json.dumps(t.agreement(t.sn)), encoding="utf-8")
    code, out = await issuer("--json", "tickets", "issue", str(agreement))
    assert code == 0, out
    ticket_id = str(json.loads(out)["ticket"]["id"])
    code, out = await issuer("tickets", "home-kept", ticket_id, "--document-no", "BDC-2025-7")
    assert code == 0, out
    assert "已核实家庭保有住房（T4）：BDC-2025-7，2025-10-09" in out
    code, out = await issuer("tickets", "home-kept", ticket_id, "--document-no", "BDC-9")
    assert code == 1 and "409 conflict: the household's home is already recorded" in out
