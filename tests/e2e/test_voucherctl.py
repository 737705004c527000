"""voucherctl against a real server on a real port (the API the city's teams will script)."""

from __future__ import annotations

import asyncio
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from ops.cli import main
from server.app import create_app
from server.settings import Settings
from tests import factories
from tests.e2e.conftest import Clock, World, new_id_number

HEADER = "不动产权证号,所在区,房屋类型,是否增量房,不含税价款,减免税价款,登簿日期,权利人身份证号\n"


class Ctl:
    def __init__(self, url: str, user: str) -> None:
        self.url = url
        self.user = user

    async def __call__(self, *argv: str) -> tuple[int, str]:
        out = io.StringIO()
        console = Console(file=out, width=200, color_system=None)
        code = await asyncio.to_thread(
            main, ["--server", self.url, "--user", self.user, *argv], console=console
        )
        return code, out.getvalue()


@pytest.fixture
async def ctl(
    aiohttp_server: Any, settings: Settings, clock: Clock, world: World, monkeypatch: Any
) -> Ctl:
    server = await aiohttp_server(create_app(settings, clock=clock))
    username = f"city-{id(server)}"
    from ops import demo as seed

    async with world.pool.acquire() as conn:
        await seed.account(conn, username=username, password="cli password", role="city_operator")
    monkeypatch.setenv("VOUCHER_PASSWORD", "cli password")
    return Ctl(str(server.make_url("")), username)


async def test_an_operator_sets_up_a_merchant_and_its_terminal(
    ctl: Ctl, world: World, tmp_path: Path
) -> None:
    code, out = await ctl("--json", "merchants", "add", "聊城示范店", "经开区")
    assert code == 0, out
    merchant_id = json.loads(out)["id"]
    for action in ("admit", "permit"):
        code, out = await ctl("merchants", action, str(merchant_id), "--reason", "资质审核通过")
        assert code == 0, out
    pairing = tmp_path / "pairing.json"
    code, out = await ctl(
        "terminals",
        "issue",
        str(merchant_id),
        "1号机",
        "--pairing-file",
        str(pairing),
        "--qr",
        str(tmp_path / "pairing.svg"),
    )
    assert code == 0, out
    assert pairing.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "pairing.svg").read_text().startswith("<?xml")
    data = json.loads(pairing.read_text())
    r = await world.client.post(
        "/v1/auth/terminal",
        json={"terminal_id": data["terminal_id"], "secret": data["terminal_secret"]},
    )
    assert r.status == 200
    code, out = await ctl("merchants", "list", "--district", "jingkai")
    assert "聊城示范店" in out
    code, out = await ctl("audit", "--action", "terminal.issue")
    assert "terminal.issue" in out


async def test_the_registry_import_lists_rejects_and_fails_the_exit_code(
    ctl: Ctl, tmp_path: Path
) -> None:
    good = f"CLI-{new_id_number()}"
    text = (
        HEADER
        + f"{good},东昌府区,住宅,是,1000000,0,2024-09-01,{new_id_number()}\n"
        + "BAD-1,东昌府区,住宅,是,abc,0,2024-09-01,x\n"
    )
    path = tmp_path / "registry.csv"
    path.write_bytes(text.encode("gbk"))
    code, out = await ctl("registry", "import", str(path))
    assert code == 1
    assert "1 inserted" in out and "1 rejected (gbk)" in out
    assert "BAD-1" in out
    code, out = await ctl("registry", "import", "--dry-run", str(path))
    assert "dry run: 0 inserted" in out and "1 unchanged" in out


async def test_revoking_a_citizen_reads_the_id_number_from_stdin(
    ctl: Ctl, world: World, monkeypatch: Any
) -> None:
    person = await world.citizen_with_vouchers()
    monkeypatch.setattr("sys.stdin", io.StringIO(person.id_number + "\n"))
    code, out = await ctl("--json", "citizens", "revoke", "--reason", "套现")
    assert code == 0, out
    assert json.loads(out)["vouchers_clawed_back"] == 48
    monkeypatch.setattr("sys.stdin", io.StringIO(person.id_number + "\n"))
    code, out = await ctl("citizens", "revoke", "--reason", "again")
    assert code == 1 and "404" in out


async def test_campaign_files_are_checked_with_clear_errors(ctl: Ctl, tmp_path: Path) -> None:
    # rule C1
    from server.campaign_files import bundled_campaigns_dir

    good = bundled_campaigns_dir() / "liaocheng-2024.toml"
    code, out = await ctl("campaigns", "check", str(good))
    assert code == 0 and "liaocheng-2024: valid" in out
    bad = tmp_path / "bad.toml"
    bad.write_text(good.read_text().replace("face_value_fen = 10_000", "face_value_fen = -1"))
    code, out = await ctl("campaigns", "check", str(bad))
    assert code == 1 and "face_value_fen" in out
    code, out = await ctl("campaigns", "list")
    assert "liaocheng-2024" in out and "liaocheng-demo" in out


async def test_the_ranking_as_a_table_and_as_files(ctl: Ctl, tmp_path: Path) -> None:
    code, out = await ctl("reports", "ranking", "2024-09")
    assert code == 0 and "district ranking 2024-09" in out
    png = tmp_path / "ranking.png"
    code, out = await ctl("reports", "ranking", "2024-09", "--format", "png", "-o", str(png))
    assert png.read_bytes().startswith(b"\x89PNG")
    code, out = await ctl("reports", "ranking", "2024-13")
    assert code == 1 and "invalid_date" in out  # issue 9: a month has the date's code


async def test_a_wrong_password_or_server_is_a_clear_error(ctl: Ctl, monkeypatch: Any) -> None:
    monkeypatch.setenv("VOUCHER_PASSWORD", "wrong")
    code, out = await ctl("merchants", "list")
    assert code == 1 and "401" in out
    code, out = await Ctl("http://127.0.0.1:9", ctl.user)("merchants", "list")
    assert code == 1 and "cannot reach" in out


async def test_a_campaign_file_is_loaded_validated_and_kept_once_claimed(
    ctl: Ctl, world: World, tmp_path: Path
) -> None:
    # rule C1: a second, differently configured campaign runs beside the others
    import uuid

    from server.campaign_files import bundled_campaigns_dir

    campaign_id = f"county-{uuid.uuid4().hex[:8]}"
    text = (bundled_campaigns_dir() / "liaocheng-2024.toml").read_text(encoding="utf-8")
    text = text.replace('id = "liaocheng-2024"', f'id = "{campaign_id}"', 1)
    path = tmp_path / "county.toml"
    path.write_text(text, encoding="utf-8")
    code, out = await ctl("campaigns", "load", str(path))
    assert code == 0 and f"{campaign_id}: loaded" in out, out
    code, out = await ctl("campaigns", "show", campaign_id)
    assert '"face_value_fen": 10000' in out
    code, out = await ctl("audit", "--action", "campaign.load")
    assert campaign_id in out
    # a broken file says what is wrong, and nothing changes
    path.write_text(text.replace("face_value_fen = 10_000", "face_value_fen = -5"), "utf-8")
    code, out = await ctl("campaigns", "load", str(path))
    assert code == 1 and "campaign_config_invalid" in out and "400" in out
    # once a claim exists under it, its rules are kept
    async with world.pool.acquire() as conn:
        await factories.claim_with_vouchers(conn, campaign_id, await factories.citizen(conn))
    path.write_text(text.replace("validity_days = 90", "validity_days = 30"), "utf-8")
    code, out = await ctl("campaigns", "load", str(path))
    assert code == 1 and "campaign_in_use" in out


# --- issue 10: output that reads well, and --json for machines -------------------------------


async def test_changes_print_one_line_each_and_json_for_machines(ctl: Ctl, tmp_path: Path) -> None:
    name = f"一行店-{new_id_number()[-6:]}"
    code, out = await ctl("merchants", "add", name, "东昌府区")
    assert code == 0 and out.count("\n") == 1, out
    assert f"{name}（东昌府区）已添加" in out and "未准入" not in out and "准入 否" in out
    assert "{" not in out and "dongchangfu" not in out  # no Python dict, no pinyin code
    code, out = await ctl("--json", "merchants", "add", f"{name}-2", "东昌府区")
    merchant = json.loads(out)
    assert (merchant["district"], merchant["admitted"], merchant["status"]) == (
        "dongchangfu",
        False,
        "active",
    )
    merchant_id = str(merchant["id"])
    for action, shown in (("admit", "准入 是"), ("permit", "核销权限 是"), ("suspend", "已暂停")):
        code, out = await ctl("merchants", action, merchant_id, "--reason", "检查")
        assert code == 0 and out.count("\n") == 1 and shown in out, out
    code, out = await ctl("--json", "merchants", "resume", merchant_id, "--reason", "整改完成")
    assert json.loads(out)["status"] == "active"
    code, out = await ctl("--lang", "en", "merchants", "suspend", merchant_id, "--reason", "x")
    assert "status suspended" in out and "(东昌府区)" in out
    code, out = await ctl("merchants", "list", "--district", "dongchangfu")
    assert name in out and "东昌府区" in out and "已暂停" in out and "dongchangfu" not in out
    pairing = str(tmp_path / "p.json")
    code, out = await ctl("terminals", "issue", merchant_id, "2号机", "--pairing-file", pairing)
    assert code == 0 and "已发放给商户" in out and pairing in out and "{" not in out
    code, out = await ctl("--json", "terminals", "issue", merchant_id, "3号机")
    issued = json.loads(out)
    assert issued["merchant_id"] == int(merchant_id) and issued["pairing"]["terminal_secret"]
    # the duplicate is refused, with the server's code
    code, out = await ctl("merchants", "add", name, "东昌府区")
    assert code == 1 and "409 conflict" in out


async def test_registry_rejects_list_every_reason_in_chinese_or_english(
    ctl: Ctl, tmp_path: Path
) -> None:
    text = HEADER + "BAD-2,火星区,别墅,也许,abc,0,2024-13-01,12345\n"
    path = tmp_path / "registry.csv"
    path.write_text(text, encoding="utf-8")
    code, out = await ctl("registry", "import", "--dry-run", str(path))
    assert code == 1
    for words in (
        "所在区“火星区”不存在",
        "房屋类型“别墅”应为住宅或非住宅",
        "是否增量房“也许”应为是或否",
        "不含税价款“abc”不是有效的金额（元）",
        "登簿日期“2024-13-01”不是有效日期",
        "第 1 位权利人的身份证号无效（位数不对）",
    ):
        assert words in out, (words, out)
    code, out = await ctl("--lang", "en", "registry", "import", "--dry-run", str(path))
    assert "unknown district '火星区'" in out and "is not a calendar date" in out
    code, out = await ctl("--json", "registry", "import", "--dry-run", str(path))
    (reject,) = json.loads(out)["rejects"]
    assert len(reject["reasons"]) == 6


async def test_campaign_problems_are_printed_once(ctl: Ctl, tmp_path: Path) -> None:
    from server.campaign_files import bundled_campaigns_dir

    good = (bundled_campaigns_dir() / "liaocheng-2024.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(good.replace("face_value_fen = 10_000", "face_value_fen = -1"))
    code, out = await ctl("campaigns", "check", str(bad))
    assert code == 1 and out.count("face_value_fen") == 1, out
    code, out = await ctl("--json", "campaigns", "check", str(bad))
    assert json.loads(out)["valid"] is False


async def test_the_ranking_csv_goes_to_stdout_and_the_audit_shows_whole_local_times(
    ctl: Ctl,
) -> None:
    code, out = await ctl("reports", "ranking", "2024-09", "--format", "csv")
    assert code == 0 and out.startswith("月份,名次,区"), out
    assert "东昌府区" in out
    await ctl("merchants", "add", f"审计店-{new_id_number()[-6:]}", "高新区")
    code, out = await ctl("audit", "--action", "merchant.add")
    assert code == 0 and "None" not in out
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", out), out


# --- issue 11 items 3 and 5: the merchant's own settings --------------------------------------


async def test_a_merchants_settings_are_shown_and_changed_only_with_a_reason(
    ctl: Ctl, world: World
) -> None:
    # rule U4 [choice] (receipts per till) and item 5 (refunds approved by a manager)
    till = await world.till()
    mid = str(till.merchant_id)
    code, out = await ctl("merchants", "settings", mid)
    assert (code, out) == (0, f"商户 {mid} 设置：小票号按收银台编号 否 · 退款需经理授权 否\n")
    # a change without a reason is refused before anything is sent: nothing changes
    code, out = await ctl("merchants", "settings", mid, "--receipts-per-till", "yes")
    assert code == 1 and "--reason" in out and "audit log" in out, out
    code, out = await ctl("--json", "merchants", "settings", mid)
    assert json.loads(out) == {
        "merchant_id": till.merchant_id,
        "receipts_per_till": False,
        "refund_needs_manager": False,
    }
    code, out = await ctl(
        "merchants", "settings", mid, "--receipts-per-till", "yes", "--reason", "每台收银机单独编号"
    )
    assert (code, out) == (0, f"商户 {mid} 设置已更改：小票号按收银台编号 是 · 退款需经理授权 否\n")
    # the till learns it when it signs in (U4: from now on a bill is also its till's)
    r = await world.client.post(
        "/v1/auth/terminal", json={"terminal_id": till.terminal_id, "secret": till.secret}
    )
    assert (await r.json())["merchant"]["receipts_per_till"] is True
    code, out = await ctl("--json", "audit", "--action", "merchant.settings")
    entry = next(e for e in json.loads(out) if e["subject"] == f"merchant:{mid}")
    assert entry["reason"] == "每台收银机单独编号"
    assert entry["details"] == {"receipts_per_till": True, "refund_needs_manager": False}

    # the shop's own manager changes the other setting, in English; the first stays
    manager = f"mgr-{new_id_number()[-8:]}".lower()
    async with world.pool.acquire() as conn:
        from ops import demo as seed

        await seed.account(
            conn,
            username=manager,
            password="cli password",
            role="merchant_manager",
            merchant_id=till.merchant_id,
        )
    as_manager = Ctl(ctl.url, manager)
    code, out = await as_manager(
        "--lang",
        "en",
        "merchants",
        "settings",
        mid,
        "--refund-needs-manager",
        "yes",
        "--reason",
        "refunds need the manager",
    )
    assert (code, out) == (
        0,
        f"merchant {mid} settings changed: "
        "receipts numbered per till yes · refunds need a manager yes\n",
    )
    # another shop's settings do not exist for this manager (rule X2); nothing changes there
    other = await world.till()
    code, out = await as_manager(
        "merchants",
        "settings",
        str(other.merchant_id),
        "--receipts-per-till",
        "yes",
        "--reason",
        "not mine",
    )
    assert code == 1 and "404" in out and "not_found" in out, out
    code, out = await ctl("--json", "merchants", "settings", str(other.merchant_id))
    assert json.loads(out)["receipts_per_till"] is False
    # a value that is not yes or no never reaches the server
    with pytest.raises(SystemExit):
        await ctl("merchants", "settings", mid, "--receipts-per-till", "maybe", "--reason", "x")
