"""``voucherctl``: the operators' command line, over the server's HTTP API.

    voucherctl --server URL --user NAME  COMMAND ...

The password comes from $VOUCHER_PASSWORD or a prompt; ID numbers are read from a prompt or
standard input, never from the command line (shell history, process lists: rule X3).
Add ``--json`` for machine-readable output (the server's own JSON); ``--lang en`` for English
statuses and reasons (Chinese by default). Every subcommand is one small function, chosen by
argparse (``set_defaults(func=...)``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ops.client import ApiError, Client, Response, Unreachable
from server.campaign_files import load_campaign
from shared.errors import CampaignConfigInvalid
from shared.money import format_yuan
from shared.settlement import STATUS_NAMES as SETTLEMENT_STATUS


class CliError(Exception):
    pass


class Api:
    """voucherctl's view of ops.client.Client: one blocking call at a time, signed in as the
    operator on first use."""

    def __init__(self, server: str, user: str, password: str) -> None:
        self.server = server.rstrip("/")
        self.user = user
        self.password = password
        self.token = ""

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, str] | None = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
        auth: bool = True,
    ) -> tuple[int, bytes, str]:
        kw = {"json_body": body, "query": query, "raw": raw, "content_type": content_type}
        try:
            answer = asyncio.run(self._call(method, path, auth, kw))
        except ApiError as exc:
            raise CliError(str(exc)) from exc
        except Unreachable as exc:
            raise CliError(str(exc)) from exc
        return answer.status, answer.body, answer.content_type

    async def _call(self, method: str, path: str, auth: bool, kw: dict[str, Any]) -> Response:
        async with Client(self.server, token=self.token) as client:
            if auth and not self.token:
                self.token = await client.sign_in_staff(self.user, self.password)
            return await client.request(method, path, token=None if auth else "", **kw)

    def json(self, method: str, path: str, **kw: Any) -> Any:
        _, payload, _ = self.call(method, path, **kw)
        return json.loads(payload)


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
                    for c in self.api.json("GET", "/v1/campaigns", auth=False)["campaigns"]:
                        for known, d in c.get("districts", {}).items():
                            self._districts[known] = d["name"]
        return self._districts.get(str(code), str(code or ""))

    def json(self, value: Any) -> None:
        self.console.print_json(json.dumps(value, ensure_ascii=False))

    def line(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def table(
        self,
        title: str,
        rows: Sequence[dict[str, Any]],
        columns: Sequence[str],
        *,
        wide: Sequence[str] = (),
    ) -> None:
        """Every cell whole: long ones fold onto further lines, none is cut; None is blank."""
        table = Table(title=title)
        for column in columns:
            table.add_column(column, overflow="fold", no_wrap=column not in wide)
        for row in rows:
            table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
        self.console.print(table)


class _quiet(contextlib.AbstractContextManager[None]):
    """District names are a nicety: a server that cannot list them leaves the codes."""

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        return kind is not None and issubclass(kind, (CliError, KeyError, TypeError))


def _local_time(value: Any) -> str:
    """The server's local ISO time as ``2024-09-10 10:00:05`` (whole, no offset noise)."""
    if not value:
        return ""
    return datetime.fromisoformat(str(value)).strftime("%Y-%m-%d %H:%M:%S")


Command = Callable[[argparse.Namespace, Api, Out], int]


# --- registry (rule E3) ---------------------------------------------------------------------


def registry_import(args: argparse.Namespace, api: Api, out: Out) -> int:
    result = api.json(
        "POST",
        "/v1/registry/imports",
        raw=Path(args.file).read_bytes(),
        content_type="text/csv",
        query={"dry_run": "true" if args.dry_run else "false"},
    )
    if out.as_json:
        out.json(result)
        return 1 if result["rejected"] else 0
    out.line(
        f"{'dry run: ' if result['dry_run'] else ''}{result['inserted']} inserted, "
        f"{result['updated']} updated, {result['unchanged']} unchanged, "
        f"{result['rejected']} rejected ({result['encoding']})"
    )
    if result["rejects"]:
        rows = [
            {"line": r["line"], "cert_no": r["cert_no"], "reasons": reasons(r, out.lang)}
            for r in result["rejects"]
        ]
        out.table("rejected rows", rows, ["line", "cert_no", "reasons"], wide=("reasons",))
    return 1 if result["rejected"] else 0


def reasons(reject: dict[str, Any], lang: str) -> str:
    """Every reason of a rejected row, one per line, in the chosen language."""
    listed = reject.get("reasons") or [{"message": reject.get("reason", "")}]
    key = "message_zh" if lang == "zh" else "message"
    return "\n".join(str(r.get(key) or r.get("message", "")) for r in listed)


# --- merchants and terminals (rules U1, X2) -------------------------------------------------


def _merchant_line(out: Out, m: dict[str, Any], verb: tuple[str, str]) -> None:
    if out.as_json:
        out.json(m)
        return
    if out.lang == "zh":
        out.line(
            f"商户 {m['id']} {m['name']}（{out.district(m['district'])}）{verb[0]}：准入 "
            f"{out.yes_no(m['admitted'])} · 核销权限 {out.yes_no(m['permitted'])} · "
            f"状态 {out.status(m['status'])}"
        )
    else:
        out.line(
            f"merchant {m['id']} {m['name']} ({out.district(m['district'])}) {verb[1]}: "
            f"admitted {out.yes_no(m['admitted'])} · permitted {out.yes_no(m['permitted'])} · "
            f"status {out.status(m['status'])}"
        )


def merchants_list(args: argparse.Namespace, api: Api, out: Out) -> int:
    query = {"district": args.district} if args.district else None
    merchants = api.json("GET", "/v1/merchants", query=query)["merchants"]
    if out.as_json:
        out.json(merchants)
        return 0
    rows = [
        {
            **m,
            "district": out.district(m["district"]),
            "admitted": out.yes_no(m["admitted"]),
            "permitted": out.yes_no(m["permitted"]),
            "status": out.status(m["status"]),
        }
        for m in merchants
    ]
    columns = ["id", "name", "district", "admitted", "permitted", "status", "active_terminals"]
    out.table("merchants", rows, columns, wide=("name",))
    return 0


def merchants_add(args: argparse.Namespace, api: Api, out: Out) -> int:
    made = api.json("POST", "/v1/merchants", body={"name": args.name, "district": args.district})
    _merchant_line(out, made, ("已添加", "added"))
    return 0


# action: (path, field, value, what it did)
MERCHANT_CHANGES = {
    "admit": ("admission", "admitted", True, ("已准入", "admitted")),
    "unadmit": ("admission", "admitted", False, ("已取消准入", "no longer admitted")),
    "permit": ("permission", "permitted", True, ("已开通核销", "permitted")),
    "withdraw": ("permission", "permitted", False, ("已关闭核销", "permission withdrawn")),
    "suspend": ("suspension", "suspended", True, ("已暂停", "suspended")),
    "resume": ("suspension", "suspended", False, ("已恢复", "resumed")),
}


def merchants_change(args: argparse.Namespace, api: Api, out: Out) -> int:
    path, name, value, verb = MERCHANT_CHANGES[args.action]
    changed = api.json(
        "POST",
        f"/v1/merchants/{args.merchant_id}/{path}",
        body={name: value, "reason": args.reason},
    )
    _merchant_line(out, changed, verb)
    return 0


def terminals_issue(args: argparse.Namespace, api: Api, out: Out) -> int:
    issued = api.json(
        "POST", f"/v1/merchants/{args.merchant_id}/terminals", body={"label": args.label}
    )
    if args.qr:
        Path(args.qr).write_text(issued["pairing_qr_svg"], encoding="utf-8")
    if args.pairing_file:
        pairing_path = Path(args.pairing_file)
        pairing_path.write_text(json.dumps(issued["pairing"]), encoding="utf-8")
        pairing_path.chmod(0o600)
    issued.pop("pairing_qr_svg")
    if out.as_json:
        out.json(issued)
        return 0
    zh = out.lang == "zh"
    out.line(
        f"收银台 {issued['terminal_id']}（{issued['label']}）已发放给商户 {issued['merchant_id']}"
        if zh
        else f"terminal {issued['terminal_id']} ({issued['label']}) issued to merchant "
        f"{issued['merchant_id']}"
    )
    if args.pairing_file:
        out.line(f"配对文件：{args.pairing_file}" if zh else f"pairing file: {args.pairing_file}")
    if args.qr:
        out.line(f"配对二维码：{args.qr}" if zh else f"pairing QR code: {args.qr}")
    if not args.pairing_file:
        secret = issued["pairing"]["terminal_secret"]
        out.line(f"凭证：{secret}" if zh else f"credential: {secret}")
    out.line("凭证只显示这一次，服务器只保存其哈希。" if zh else issued["note"])
    return 0


def terminals_revoke(args: argparse.Namespace, api: Api, out: Out) -> int:
    body = {"reason": args.reason}
    done = api.json("POST", f"/v1/terminals/{args.terminal_id}/revocation", body=body)
    if out.as_json:
        out.json(done)
    elif out.lang == "zh":
        out.line(f"收银台 {done['terminal_id']}：{out.status(done['status'])}")
    else:
        out.line(f"terminal {done['terminal_id']}: {out.status(done['status'])}")
    return 0


# --- campaigns (rule C1) --------------------------------------------------------------------


def _campaigns(api: Api) -> list[dict[str, Any]]:
    return list(api.json("GET", "/v1/campaigns", auth=False)["campaigns"])


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
    loaded = api.json("POST", "/v1/campaigns", raw=raw, content_type="application/toml")
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
    body = {"id_number": number, "reason": args.reason}
    done = api.json("POST", "/v1/citizens/revocation", body=body)
    if out.as_json:
        out.json(done)
    elif out.lang == "zh":
        out.line(
            f"{done['masked_id']}：参与资格{out.status(done['status'])}，"
            f"收回未用消费券 {done['vouchers_clawed_back']} 张"
        )
    else:
        out.line(
            f"{done['masked_id']}: participation {out.status(done['status'])}, "
            f"{done['vouchers_clawed_back']} unused vouchers clawed back"
        )
    return 0


# --- staff accounts (rule X2) ---------------------------------------------------------------


def _account_id(api: Api, username: str) -> int:
    found = api.json("GET", "/v1/accounts", query={"username": username})["accounts"]
    if not found:
        raise CliError(f"no account {username} that you manage")
    return int(found[0]["id"])


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


def _account_line(out: Out, account: dict[str, Any]) -> None:
    if out.as_json:
        out.json(account)
        return
    where = out.district(account["district"]) if account.get("district") else ""
    if account.get("merchant_id") is not None:
        where = f"merchant {account['merchant_id']}"
    scope = f"{account['role']}{', ' + where if where else ''}"
    out.line(f"{account['username']} ({scope}): {out.status(account['status'])}")
    if "password" in account:
        out.line(f"password: {account['password']}")
        out.line("the password is shown this once; hand it over in person")


def accounts_list(args: argparse.Namespace, api: Api, out: Out) -> int:
    query = {"role": args.role} if args.role else None
    found = api.json("GET", "/v1/accounts", query=query)["accounts"]
    if out.as_json:
        out.json(found)
        return 0
    rows = [
        {
            **a,
            "district": out.district(a["district"]) if a["district"] else None,
            "status": out.status(a["status"]),
            "created_at": _local_time(a["created_at"]),
        }
        for a in found
    ]
    columns = ["id", "username", "role", "district", "merchant_id", "status", "created_at"]
    out.table("accounts", rows, columns)
    return 0


def accounts_add(args: argparse.Namespace, api: Api, out: Out) -> int:
    body = {"username": args.username, **_scope(args), "reason": args.reason}
    _account_line(out, api.json("POST", "/v1/accounts", body={**body, **_given_password(args)}))
    return 0


def accounts_status(args: argparse.Namespace, api: Api, out: Out) -> int:
    path = f"/v1/accounts/{_account_id(api, args.username)}/status"
    status = "disabled" if args.action == "disable" else "active"
    _account_line(out, api.json("POST", path, body={"status": status, "reason": args.reason}))
    return 0


def accounts_role(args: argparse.Namespace, api: Api, out: Out) -> int:
    path = f"/v1/accounts/{_account_id(api, args.username)}/role"
    _account_line(out, api.json("POST", path, body={**_scope(args), "reason": args.reason}))
    return 0


def accounts_reset_password(args: argparse.Namespace, api: Api, out: Out) -> int:
    path = f"/v1/accounts/{_account_id(api, args.username)}/password"
    body = {"reason": args.reason, **_given_password(args)}
    _account_line(out, api.json("POST", path, body=body))
    return 0


# --- settlement and reports (rules S1, S3) --------------------------------------------------


def _print_batch(out: Out, batch: dict[str, Any]) -> None:
    if out.as_json:
        out.json(batch)
        return
    out.line(
        f"settlement {batch['settlement_id']} · {batch['campaign_id']} · "
        f"{out.district(batch['district'])} · {batch['month']} · {out.status(batch['status'])} · "
        f"{batch['redemption_count']} bills, {batch['voucher_count']} vouchers, "
        f"{format_yuan(batch['amount_fen'])} 元"
    )
    rows = [{**x, "amount": format_yuan(x["amount_fen"])} for x in batch["lines"]]
    columns = ["merchant_id", "merchant_name", "redemptions", "vouchers", "amount"]
    out.table("per merchant", rows, columns, wide=("merchant_name",))


def settlements_build(args: argparse.Namespace, api: Api, out: Out) -> int:
    body = {"campaign_id": args.campaign_id, "district": args.district, "month": args.month}
    _print_batch(out, api.json("POST", "/v1/settlements", body=body))
    return 0


def settlements_show(args: argparse.Namespace, api: Api, out: Out) -> int:
    _print_batch(out, api.json("GET", f"/v1/settlements/{args.settlement_id}"))
    return 0


def settlements_step(args: argparse.Namespace, api: Api, out: Out) -> int:
    body: dict[str, str] = {"step": args.action}
    if args.note:
        body["note"] = args.note
    _print_batch(out, api.json("POST", f"/v1/settlements/{args.settlement_id}/steps", body=body))
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
    _, payload, _ = api.call("GET", f"/v1/settlements/{args.settlement_id}/csv")
    _write(out, payload, args.output, text=True)
    return 0


def reports_ranking(args: argparse.Namespace, api: Api, out: Out) -> int:
    fmt = {"table": "json", "csv": "csv", "png": "png"}[args.format]
    _, payload, _ = api.call(
        "GET", "/v1/reports/ranking", query={"month": args.month, "format": fmt}
    )
    if fmt != "json":
        _write(out, payload, args.output, text=fmt == "csv")
        return 0
    ranking = json.loads(payload)
    if out.as_json:
        out.json(ranking)
        return 0
    rows = [
        {
            **d,
            "value": format_yuan(d["value_redeemed_fen"]),
            "rate": f"{d['redemption_rate_bp'] / 100:.2f}%",
        }
        for d in ranking["districts"]
    ]
    columns = ["rank", "name", "claims", "vouchers_issued", "vouchers_redeemed", "value", "rate"]
    out.table(f"district ranking {ranking['month']}", rows, columns)
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
    entries = api.json("GET", "/v1/audit", query=query)["entries"]
    if out.as_json:
        out.json(entries)
        return 0
    rows = [{**e, "at": _local_time(e["at"])} for e in entries]
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
