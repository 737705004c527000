"""``voucherctl``: the operators' command line, over the server's HTTP API.

    voucherctl --server URL --user NAME  COMMAND ...

The password comes from $VOUCHER_PASSWORD or a prompt; ID numbers are read from a prompt or
standard input, never from the command line (shell history, process lists: rule X3).
Add ``--json`` for machine-readable output (the server's answer); ``--lang en`` for English
statuses and reasons (Chinese by default). Every subcommand is one small function, chosen by
argparse (``set_defaults(func=...)``), over the one typed API client (``client/staff.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from rich.console import Console
from rich.table import Table

from client.http import ApiError, BadAnswer, Unreachable
from client.staff import MerchantChange, StaffClient
from client.wire import Account, Merchant, RegistryReject, Settlement
from server.campaign_files import load_campaign
from shared.errors import CampaignConfigInvalid
from shared.money import format_yuan
from shared.settlement import STATUS_NAMES as SETTLEMENT_STATUS

T = TypeVar("T")


class CliError(Exception):
    pass


class Api:
    """voucherctl's view of ``client.staff.StaffClient``: one blocking call at a time, signed
    in as the operator on first use; a refusal or an absent server is a ``CliError``."""

    def __init__(self, server: str, user: str, password: str) -> None:
        self.server = server.rstrip("/")
        self.user = user
        self.password = password
        self.token = ""

    def __call__(self, use: Callable[[StaffClient], Awaitable[T]], *, auth: bool = True) -> T:
        try:
            return asyncio.run(self._run(use, auth))
        except (ApiError, Unreachable, BadAnswer) as exc:
            raise CliError(str(exc)) from exc

    async def _run(self, use: Callable[[StaffClient], Awaitable[T]], auth: bool) -> T:
        async with StaffClient(self.server, token=self.token) as client:
            if auth and not self.token:
                await client.sign_in(self.user, self.password)
                self.token = client.token
            return await use(client)


def _secret_line(prompt: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().strip()


# --- output ---------------------------------------------------------------------------------

STATUS = {
    "active": ("正常", "active"),
    "suspended": ("已暂停", "suspended"),
    "revoked": ("已撤销", "revoked"),
    "disabled": ("已停用", "disabled"),
    **{k: (v, k) for k, v in SETTLEMENT_STATUS.items()},
}
YES_NO = {True: ("是", "yes"), False: ("否", "no")}


@dataclass
class Out:
    """Where a subcommand writes: a rich console, as JSON or for people, in one language."""

    console: Console
    as_json: bool = False
    lang: str = "zh"
    api: Api | None = None
    _districts: dict[str, str] | None = field(default=None, repr=False)

    def pick(self, words: tuple[str, str]) -> str:
        return words[0] if self.lang == "zh" else words[1]

    def status(self, value: Any) -> str:
        return self.pick(STATUS.get(str(value), (str(value), str(value))))

    def yes_no(self, value: Any) -> str:
        return self.pick(YES_NO[bool(value)])

    def district(self, code: Any) -> str:
        """东昌府区 for ``dongchangfu``: names from the server's campaigns (public)."""
        if self._districts is None:
            self._districts = {}
            if self.api is not None:
                with _quiet():
                    public = self.api(lambda c: c.campaigns(), auth=False)
                    self._districts = public.district_names()
        return self._districts.get(str(code), str(code or ""))

    def json(self, value: Any) -> None:
        """An answer (a Struct of ``client.wire``, or plain JSON) as the server sent it."""
        self.console.print_json(json.dumps(msgspec.to_builtins(value), ensure_ascii=False))

    def line(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def table(
        self,
        title: str,
        rows: Sequence[Mapping[str, Any]],
        columns: Sequence[str],
        *,
        wide: Sequence[str] = (),
    ) -> None:
        """Every cell whole: long ones fold onto further lines, none is cut; None is blank."""
        table = Table(title=title)
        for column in columns:
            table.add_column(column, overflow="fold", no_wrap=column not in wide)
        for row in rows:
            table.add_row(*(_cell(row.get(c)) for c in columns))
        self.console.print(table)


def _cell(value: Any) -> str:
    return "" if value is None or value is msgspec.UNSET else str(value)


def _row(struct: msgspec.Struct, /, **shown: Any) -> dict[str, Any]:
    """A Struct's fields as a table row, some of them shown otherwise."""
    return {**msgspec.structs.asdict(struct), **shown}


class _quiet(contextlib.AbstractContextManager[None]):
    """District names are a nicety: a server that cannot list them leaves the codes."""

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        return kind is not None and issubclass(kind, CliError)


def _local_time(value: Any) -> str:
    """The server's local ISO time as ``2024-09-10 10:00:05`` (whole, no offset noise)."""
    if not value:
        return ""
    return datetime.fromisoformat(str(value)).strftime("%Y-%m-%d %H:%M:%S")


Command = Callable[[argparse.Namespace, Api, Out], int]


# --- registry (rule E3) ---------------------------------------------------------------------


def registry_import(args: argparse.Namespace, api: Api, out: Out) -> int:
    csv = Path(args.file).read_bytes()
    result = api(lambda c: c.import_registry(csv, dry_run=args.dry_run))
    failed = 1 if result.rejected else 0
    if out.as_json:
        out.json(result)
        return failed
    out.line(
        f"{'dry run: ' if result.dry_run else ''}{result.inserted} inserted, "
        f"{result.updated} updated, {result.unchanged} unchanged, "
        f"{result.rejected} rejected ({result.encoding})"
    )
    if result.rejects:
        rows = [
            {"line": r.line, "cert_no": r.cert_no, "reasons": reasons(r, out.lang)}
            for r in result.rejects
        ]
        out.table("rejected rows", rows, ["line", "cert_no", "reasons"], wide=("reasons",))
    return failed


def reasons(reject: RegistryReject, lang: str) -> str:
    """Every reason of a rejected row, one per line, in the chosen language."""
    if not reject.reasons:
        return reject.reason
    return "\n".join((r.message_zh if lang == "zh" else "") or r.message for r in reject.reasons)


# --- merchants and terminals (rules U1, X2) -------------------------------------------------


def _merchant_line(out: Out, m: Merchant, verb: tuple[str, str]) -> None:
    if out.as_json:
        out.json(m)
        return
    if out.lang == "zh":
        out.line(
            f"商户 {m.id} {m.name}（{out.district(m.district)}）{verb[0]}：准入 "
            f"{out.yes_no(m.admitted)} · 核销权限 {out.yes_no(m.permitted)} · "
            f"状态 {out.status(m.status)}"
        )
    else:
        out.line(
            f"merchant {m.id} {m.name} ({out.district(m.district)}) {verb[1]}: "
            f"admitted {out.yes_no(m.admitted)} · permitted {out.yes_no(m.permitted)} · "
            f"status {out.status(m.status)}"
        )


def merchants_list(args: argparse.Namespace, api: Api, out: Out) -> int:
    merchants = api(lambda c: c.merchants(args.district)).merchants
    if out.as_json:
        out.json(merchants)
        return 0
    rows = [
        _row(
            m,
            district=out.district(m.district),
            admitted=out.yes_no(m.admitted),
            permitted=out.yes_no(m.permitted),
            status=out.status(m.status),
        )
        for m in merchants
    ]
    columns = ["id", "name", "district", "admitted", "permitted", "status", "active_terminals"]
    out.table("merchants", rows, columns, wide=("name",))
    return 0


def merchants_add(args: argparse.Namespace, api: Api, out: Out) -> int:
    made = api(lambda c: c.add_merchant(args.name, args.district))
    _merchant_line(out, made, ("已添加", "added"))
    return 0


# action: (what changes, to what, what it did)
MERCHANT_CHANGES: dict[str, tuple[MerchantChange, bool, tuple[str, str]]] = {
    "admit": ("admission", True, ("已准入", "admitted")),
    "unadmit": ("admission", False, ("已取消准入", "no longer admitted")),
    "permit": ("permission", True, ("已开通核销", "permitted")),
    "withdraw": ("permission", False, ("已关闭核销", "permission withdrawn")),
    "suspend": ("suspension", True, ("已暂停", "suspended")),
    "resume": ("suspension", False, ("已恢复", "resumed")),
}


def merchants_change(args: argparse.Namespace, api: Api, out: Out) -> int:
    change, value, verb = MERCHANT_CHANGES[args.action]
    changed = api(lambda c: c.change_merchant(args.merchant_id, change, value, args.reason))
    _merchant_line(out, changed, verb)
    return 0


# the merchant's own settings (rule U4 [choice], issue 11 item 5): shown, or changed with a reason
SETTING_FLAGS = {
    "receipts_per_till": ("小票号按收银台编号", "receipts numbered per till"),
    "refund_needs_manager": ("退款需经理授权", "refunds need a manager"),
}
ON_OFF = {"yes": True, "no": False}


def merchants_settings(args: argparse.Namespace, api: Api, out: Out) -> int:
    wanted = {k: ON_OFF[v] for k in SETTING_FLAGS if (v := getattr(args, k)) is not None}
    if wanted and not args.reason:
        raise CliError("--reason is needed to change a setting (it goes to the audit log)")
    if wanted:
        found = api(lambda c: c.change_merchant_settings(args.merchant_id, args.reason, **wanted))
    else:
        found = api(lambda c: c.merchant_settings(args.merchant_id))
    if out.as_json:
        out.json(found)
        return 0
    shown = " · ".join(
        f"{out.pick(words)} {out.yes_no(getattr(found, name))}"
        for name, words in SETTING_FLAGS.items()
    )
    verb = out.pick(("设置已更改", "settings changed") if wanted else ("设置", "settings"))
    mid = found.merchant_id
    out.line(
        f"商户 {mid} {verb}：{shown}" if out.lang == "zh" else f"merchant {mid} {verb}: {shown}"
    )
    return 0


def terminals_issue(args: argparse.Namespace, api: Api, out: Out) -> int:
    issued = api(lambda c: c.issue_terminal(args.merchant_id, args.label))
    if args.qr:
        Path(args.qr).write_text(issued.pairing_qr_svg, encoding="utf-8")
    if args.pairing_file:
        pairing_path = Path(args.pairing_file)
        pairing_path.write_bytes(msgspec.json.encode(issued.pairing))
        pairing_path.chmod(0o600)
    if out.as_json:
        shown = msgspec.to_builtins(issued)
        shown.pop("pairing_qr_svg")
        out.json(shown)
        return 0
    zh = out.lang == "zh"
    out.line(
        f"收银台 {issued.terminal_id}（{issued.label}）已发放给商户 {issued.merchant_id}"
        if zh
        else f"terminal {issued.terminal_id} ({issued.label}) issued to merchant "
        f"{issued.merchant_id}"
    )
    if args.pairing_file:
        out.line(f"配对文件：{args.pairing_file}" if zh else f"pairing file: {args.pairing_file}")
    if args.qr:
        out.line(f"配对二维码：{args.qr}" if zh else f"pairing QR code: {args.qr}")
    if not args.pairing_file:
        secret = issued.pairing.terminal_secret
        out.line(f"凭证：{secret}" if zh else f"credential: {secret}")
    out.line("凭证只显示这一次，服务器只保存其哈希。" if zh else issued.note)
    return 0


def terminals_revoke(args: argparse.Namespace, api: Api, out: Out) -> int:
    done = api(lambda c: c.revoke_terminal(args.terminal_id, args.reason))
    if out.as_json:
        out.json(done)
    elif out.lang == "zh":
        out.line(f"收银台 {done.terminal_id}：{out.status(done.status)}")
    else:
        out.line(f"terminal {done.terminal_id}: {out.status(done.status)}")
    return 0


# --- campaigns (rule C1) --------------------------------------------------------------------


def _campaigns(api: Api) -> tuple[dict[str, Any], ...]:
    return api(lambda c: c.campaigns(), auth=False).campaigns


def campaigns_list(args: argparse.Namespace, api: Api, out: Out) -> int:
    campaigns = _campaigns(api)
    if out.as_json:
        out.json(campaigns)
    else:
        columns = ["id", "name", "claim_opens", "hard_end"]
        out.table("campaigns", campaigns, columns, wide=("name",))
    return 0


def campaigns_show(args: argparse.Namespace, api: Api, out: Out) -> int:
    found = [c for c in _campaigns(api) if c["id"] == args.campaign_id]
    if not found:
        raise CliError(f"no campaign {args.campaign_id}")
    out.json(found[0])
    return 0


def campaigns_load(args: argparse.Namespace, api: Api, out: Out) -> int:
    raw = Path(args.file).read_bytes()
    loaded = api(lambda c: c.load_campaign(raw))
    out.json(loaded) if out.as_json else out.line(f"{loaded['id']}: loaded ({loaded['name']})")
    return 0


def campaigns_check(args: argparse.Namespace, api: Api, out: Out) -> int:
    try:
        campaign = load_campaign(args.file)
    except CampaignConfigInvalid as exc:
        problems: list[Any] = list(exc.details.get("problems") or [])  # type: ignore[arg-type]
        if out.as_json:
            out.json({"valid": False, "file": args.file, "problems": problems})
        elif problems:  # each problem once (the message lists them too)
            out.line(f"{args.file}: {len(problems)} problem(s)")
            for problem in problems:
                out.line(f"  {problem['path']}: {problem['problem']}")
        else:
            out.line(exc.message)
        return 1
    if out.as_json:
        out.json({"valid": True, "file": args.file, "id": campaign.id, "name": campaign.name})
    else:
        out.line(f"{campaign.id}: valid ({campaign.name})")
    return 0


# --- citizens (rule X1) ---------------------------------------------------------------------


def citizens_revoke(args: argparse.Namespace, api: Api, out: Out) -> int:
    number = _secret_line("ID number: ")
    done = api(lambda c: c.revoke_citizen(number, args.reason))
    if out.as_json:
        out.json(done)
    elif out.lang == "zh":
        out.line(
            f"{done.masked_id}：参与资格{out.status(done.status)}，"
            f"收回未用消费券 {done.vouchers_clawed_back} 张"
        )
    else:
        out.line(
            f"{done.masked_id}: participation {out.status(done.status)}, "
            f"{done.vouchers_clawed_back} unused vouchers clawed back"
        )
    return 0


# --- staff accounts (rule X2) ---------------------------------------------------------------


def _account_id(api: Api, username: str) -> int:
    found = api(lambda c: c.accounts(username=username)).accounts
    if not found:
        raise CliError(f"no account {username} that you manage")
    return found[0].id


def _scope(args: argparse.Namespace) -> dict[str, Any]:
    scope: dict[str, Any] = {"role": args.role}
    if args.district:
        scope["district"] = args.district
    if args.merchant_id is not None:
        scope["merchant_id"] = args.merchant_id
    return scope


def _given_password(args: argparse.Namespace) -> dict[str, str]:
    """A password read from a prompt or standard input (never the command line), or none:
    the server then generates one and shows it once."""
    return {"password": _secret_line("new password: ")} if args.password_stdin else {}


def _account_line(out: Out, account: Account) -> None:
    if out.as_json:
        out.json(account)
        return
    where = out.district(account.district) if account.district else ""
    if account.merchant_id is not None:
        where = f"merchant {account.merchant_id}"
    scope = f"{account.role}{', ' + where if where else ''}"
    out.line(f"{account.username} ({scope}): {out.status(account.status)}")
    if isinstance(account.password, str):
        out.line(f"password: {account.password}")
        out.line("the password is shown this once; hand it over in person")


def accounts_list(args: argparse.Namespace, api: Api, out: Out) -> int:
    found = api(lambda c: c.accounts(role=args.role)).accounts
    if out.as_json:
        out.json(found)
        return 0
    rows = [
        _row(
            a,
            district=out.district(a.district) if a.district else None,
            status=out.status(a.status),
            created_at=_local_time(a.created_at),
        )
        for a in found
    ]
    columns = ["id", "username", "role", "district", "merchant_id", "status", "created_at"]
    out.table("accounts", rows, columns)
    return 0


def accounts_add(args: argparse.Namespace, api: Api, out: Out) -> int:
    body = {"username": args.username, **_scope(args), "reason": args.reason}
    body.update(_given_password(args))
    _account_line(out, api(lambda c: c.add_account(body)))
    return 0


def accounts_status(args: argparse.Namespace, api: Api, out: Out) -> int:
    account_id = _account_id(api, args.username)
    body = {"status": "disabled" if args.action == "disable" else "active", "reason": args.reason}
    _account_line(out, api(lambda c: c.change_account(account_id, "status", body)))
    return 0


def accounts_role(args: argparse.Namespace, api: Api, out: Out) -> int:
    account_id = _account_id(api, args.username)
    body = {**_scope(args), "reason": args.reason}
    _account_line(out, api(lambda c: c.change_account(account_id, "role", body)))
    return 0


def accounts_reset_password(args: argparse.Namespace, api: Api, out: Out) -> int:
    account_id = _account_id(api, args.username)
    body = {"reason": args.reason, **_given_password(args)}
    _account_line(out, api(lambda c: c.change_account(account_id, "password", body)))
    return 0


# --- settlement and reports (rules S1, S3) --------------------------------------------------


def _print_batch(out: Out, batch: Settlement) -> None:
    if out.as_json:
        out.json(batch)
        return
    out.line(
        f"settlement {batch.settlement_id} · {batch.campaign_id} · "
        f"{out.district(batch.district)} · {batch.month} · {out.status(batch.status)} · "
        f"{batch.redemption_count} bills, {batch.voucher_count} vouchers, "
        f"{format_yuan(batch.amount_fen)} 元"
    )
    rows = [_row(x, amount=format_yuan(x.amount_fen)) for x in batch.lines]
    columns = ["merchant_id", "merchant_name", "redemptions", "vouchers", "amount"]
    out.table("per merchant", rows, columns, wide=("merchant_name",))


def settlements_build(args: argparse.Namespace, api: Api, out: Out) -> int:
    built = api(lambda c: c.build_settlement(args.campaign_id, args.district, args.month))
    _print_batch(out, built)
    return 0


def settlements_show(args: argparse.Namespace, api: Api, out: Out) -> int:
    _print_batch(out, api(lambda c: c.settlement(args.settlement_id)))
    return 0


def settlements_step(args: argparse.Namespace, api: Api, out: Out) -> int:
    done = api(lambda c: c.settlement_step(args.settlement_id, args.action, args.note))
    _print_batch(out, done)
    return 0


def _write(out: Out, payload: bytes, output: str | None, *, text: bool) -> None:
    """To the file named, or to standard output (text only: a PNG is no terminal's business)."""
    if output and output != "-":
        Path(output).write_bytes(payload)
        out.console.print(f"wrote {output}", highlight=False, markup=False)
    elif text:
        out.console.file.write(payload.decode("utf-8-sig"))
        out.console.file.flush()
    else:
        raise CliError("--output is needed for png")


def settlements_csv(args: argparse.Namespace, api: Api, out: Out) -> int:
    payload = api(lambda c: c.settlement_csv(args.settlement_id))
    _write(out, payload, args.output, text=True)
    return 0


def reports_ranking(args: argparse.Namespace, api: Api, out: Out) -> int:
    if args.format != "table":
        payload = api(lambda c: c.ranking_file(args.month, args.format))
        _write(out, payload, args.output, text=args.format == "csv")
        return 0
    ranking = api(lambda c: c.ranking(args.month))
    if out.as_json:
        out.json(ranking)
        return 0
    rows = [
        _row(
            d,
            value=format_yuan(d.value_redeemed_fen),
            rate=f"{d.redemption_rate_bp / 100:.2f}%",
        )
        for d in ranking.districts
    ]
    columns = ["rank", "name", "claims", "vouchers_issued", "vouchers_redeemed", "value", "rate"]
    out.table(f"district ranking {ranking.month}", rows, columns)
    return 0


def audit(args: argparse.Namespace, api: Api, out: Out) -> int:
    query = {
        k: v
        for k, v in (
            ("actor", args.actor),
            ("action", args.action_filter),
            ("from", args.date_from),
            ("to", args.date_to),
        )
        if v
    }
    entries = api(lambda c: c.audit(query)).entries
    if out.as_json:
        out.json(entries)
        return 0
    rows = [_row(e, at=_local_time(e.at)) for e in entries]
    columns = ["at", "actor", "action", "subject", "reason"]
    out.table("audit log", rows, columns, wide=("subject", "reason"))
    return 0


# --- the parser -----------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="voucherctl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--server", default=os.environ.get("VOUCHER_SERVER", "http://127.0.0.1:8080"))
    p.add_argument("--user", default=os.environ.get("VOUCHER_USER"))
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="statuses and reasons")
    groups = p.add_subparsers(dest="group", required=True)

    def command(parent: Any, name: str, func: Command, **kw: Any) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = parent.add_parser(name, **kw)
        sub.set_defaults(func=func, action=name)
        return sub

    registry = groups.add_parser("registry").add_subparsers(dest="action", required=True)
    imp = command(registry, "import", registry_import, help="the office's CSV (UTF-8 or GBK)")
    imp.add_argument("file")
    imp.add_argument("--dry-run", action="store_true")

    merchants = groups.add_parser("merchants").add_subparsers(dest="action", required=True)
    command(merchants, "list", merchants_list).add_argument("--district")
    add = command(merchants, "add", merchants_add)
    add.add_argument("name")
    add.add_argument("district")
    for action in MERCHANT_CHANGES:
        sub = command(merchants, action, merchants_change)
        sub.add_argument("merchant_id", type=int)
        sub.add_argument("--reason", required=True)
    shop = command(merchants, "settings", merchants_settings, help="show or change (U4)")
    shop.add_argument("merchant_id", type=int)
    for name in SETTING_FLAGS:
        shop.add_argument("--" + name.replace("_", "-"), choices=tuple(ON_OFF))
    shop.add_argument("--reason", help="needed to change a setting (audited)")

    terminals = groups.add_parser("terminals").add_subparsers(dest="action", required=True)
    issue = command(terminals, "issue", terminals_issue, help="its credential is shown once")
    issue.add_argument("merchant_id", type=int)
    issue.add_argument("label")
    issue.add_argument("--qr", help="write the pairing QR code (SVG) here")
    issue.add_argument("--pairing-file", help="write the pairing JSON here (mode 0600)")
    revoke = command(terminals, "revoke", terminals_revoke)
    revoke.add_argument("terminal_id", type=int)
    revoke.add_argument("--reason", required=True)

    campaigns = groups.add_parser("campaigns").add_subparsers(dest="action", required=True)
    command(campaigns, "list", campaigns_list)
    command(campaigns, "show", campaigns_show).add_argument("campaign_id")
    command(campaigns, "check", campaigns_check, help="validate a file (C1)").add_argument("file")
    command(campaigns, "load", campaigns_load, help="load a file (C1)").add_argument("file")

    citizens = groups.add_parser("citizens").add_subparsers(dest="action", required=True)
    crev = command(citizens, "revoke", citizens_revoke, help="the ID number is prompted")
    crev.add_argument("--reason", required=True)

    _account_parsers(groups, command)

    settlements = groups.add_parser("settlements").add_subparsers(dest="action", required=True)
    build = command(settlements, "build", settlements_build)
    build.add_argument("campaign_id")
    build.add_argument("district")
    build.add_argument("month", help="YYYY-MM")
    command(settlements, "show", settlements_show).add_argument("settlement_id", type=int)
    for action in ("review", "approve", "pay"):
        sub = command(settlements, action, settlements_step)
        sub.add_argument("settlement_id", type=int)
        sub.add_argument("--note")
    scsv = command(settlements, "csv", settlements_csv)
    scsv.add_argument("settlement_id", type=int)
    scsv.add_argument("-o", "--output", help="a file (default: standard output)")

    reports = groups.add_parser("reports").add_subparsers(dest="action", required=True)
    from ops import tickets_cli  # issue 13: house tickets (it builds on this module)

    tickets_cli.add_report_parser(reports, command)
    ranking = command(reports, "ranking", reports_ranking)
    ranking.add_argument("month", help="YYYY-MM")
    ranking.add_argument("--format", choices=("table", "csv", "png"), default="table")
    ranking.add_argument("-o", "--output", help="a file (csv: default standard output)")

    log = groups.add_parser("audit")
    log.set_defaults(func=audit, action=None)
    log.add_argument("--actor")
    log.add_argument("--action", dest="action_filter")
    log.add_argument("--from", dest="date_from")
    log.add_argument("--to", dest="date_to")
    tickets_cli.add_parsers(groups, command)
    groups.add_parser("loadtest", help="the load test: see voucherctl loadtest --help")
    return p


def _account_parsers(groups: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    """voucherctl accounts ...: the city manages every account, a merchant manager their
    shop's manager accounts (rule X2); every change needs a --reason (it is audited)."""
    accounts = groups.add_parser("accounts", help="staff accounts (X2)").add_subparsers(
        dest="action", required=True
    )
    command(accounts, "list", accounts_list).add_argument("--role")
    roles = ("merchant_manager", "district_operator", "city_operator", "auditor")
    for action, func in (("add", accounts_add), ("role", accounts_role)):
        sub = command(accounts, action, func)
        sub.add_argument("username")
        sub.add_argument("role", choices=roles)
        sub.add_argument("--district", help="a district operator's district")
        sub.add_argument("--merchant-id", type=int, help="a merchant manager's merchant")
        sub.add_argument("--reason", required=True)
        if action == "add":
            sub.add_argument(
                "--password-stdin",
                action="store_true",
                help="read the password (12+ characters) from a prompt or stdin; "
                "without it the server generates one and shows it once",
            )
    for action, func in (
        ("disable", accounts_status),
        ("enable", accounts_status),
        ("reset-password", accounts_reset_password),
    ):
        sub = command(accounts, action, func)
        sub.add_argument("username")
        sub.add_argument("--reason", required=True)
        if action == "reset-password":
            sub.add_argument("--password-stdin", action="store_true")


NO_SIGN_IN = {campaigns_list, campaigns_show, campaigns_check}


def main(argv: Sequence[str] | None = None, *, console: Console | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["loadtest"]:
        from ops import loadtest

        return loadtest.main(argv[1:])
    args = parser().parse_args(argv)
    console = console or Console()
    password = ""
    if args.func not in NO_SIGN_IN:
        if not args.user:
            console.print("[red]--user (or VOUCHER_USER) is needed[/red]")
            return 2
        password = os.environ.get("VOUCHER_PASSWORD") or getpass.getpass(
            f"password for {args.user}: "
        )
    api = Api(args.server, args.user or "", password)
    out = Out(console, as_json=args.json, lang=args.lang, api=api)
    try:
        return int(args.func(args, api, out))
    except CliError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
