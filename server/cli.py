"""``voucherctl``: the operators' command line, over the server's HTTP API.

    voucherctl --server URL --user NAME  COMMAND ...

The password comes from $VOUCHER_PASSWORD or a prompt; ID numbers are read from a prompt or
standard input, never from the command line (shell history, process lists: rule X3).
Add ``--json`` for machine-readable output.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from server.campaign_files import load_campaign
from shared.errors import CampaignConfigInvalid
from shared.money import format_yuan


class CliError(Exception):
    pass


class Api:
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
        if auth and not self.token:
            self._sign_in()
        url = self.server + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": content_type} if data is not None else {}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
                return response.status, response.read(), response.headers.get_content_type()
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            try:
                error = json.loads(payload)["error"]
                message = f"{error['code']}: {error['message']}"
            except (ValueError, KeyError, TypeError):
                message = payload.decode(errors="replace")[:200]
            raise CliError(f"{exc.code} {message}") from exc
        except urllib.error.URLError as exc:
            raise CliError(f"cannot reach {self.server}: {exc.reason}") from exc

    def json(self, method: str, path: str, **kw: Any) -> Any:
        _, payload, _ = self.call(method, path, **kw)
        return json.loads(payload)

    def _sign_in(self) -> None:
        _, payload, _ = self.call(
            "POST",
            "/v1/auth/staff",
            body={"username": self.user, "password": self.password},
            auth=False,
        )
        self.token = json.loads(payload)["access_token"]


def _table(
    console: Console, title: str, rows: Sequence[dict[str, Any]], columns: Sequence[str]
) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    console.print(table)


def _secret_line(prompt: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().strip()


# --- staff accounts (rule X2): one small function per subcommand -------------------------


def _show(console: Console, value: Any, as_json: bool) -> None:
    console.print_json(json.dumps(value, ensure_ascii=False)) if as_json else console.print(value)


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


def _shown_once(console: Console, account: dict[str, Any], as_json: bool) -> None:
    _show(console, account, as_json)
    if "password" in account and not as_json:
        console.print("[bold]the password is shown this once; hand it over in person[/bold]")


def accounts_list(args: argparse.Namespace, api: Api, console: Console) -> int:
    query = {"role": args.role} if args.role else None
    found = api.json("GET", "/v1/accounts", query=query)["accounts"]
    if args.json:
        _show(console, found, True)
    else:
        columns = ["id", "username", "role", "district", "merchant_id", "status", "created_at"]
        _table(console, "accounts", found, columns)
    return 0


def accounts_add(args: argparse.Namespace, api: Api, console: Console) -> int:
    body = {"username": args.username, **_scope(args), "reason": args.reason}
    made = api.json("POST", "/v1/accounts", body={**body, **_given_password(args)})
    _shown_once(console, made, args.json)
    return 0


def accounts_disable(args: argparse.Namespace, api: Api, console: Console) -> int:
    path = f"/v1/accounts/{_account_id(api, args.username)}/status"
    body = {"status": "disabled", "reason": args.reason}
    _show(console, api.json("POST", path, body=body), args.json)
    return 0


def accounts_enable(args: argparse.Namespace, api: Api, console: Console) -> int:
    path = f"/v1/accounts/{_account_id(api, args.username)}/status"
    body = {"status": "active", "reason": args.reason}
    _show(console, api.json("POST", path, body=body), args.json)
    return 0


def accounts_role(args: argparse.Namespace, api: Api, console: Console) -> int:
    path = f"/v1/accounts/{_account_id(api, args.username)}/role"
    body = {**_scope(args), "reason": args.reason}
    _show(console, api.json("POST", path, body=body), args.json)
    return 0


def accounts_reset_password(args: argparse.Namespace, api: Api, console: Console) -> int:
    path = f"/v1/accounts/{_account_id(api, args.username)}/password"
    body = {"reason": args.reason, **_given_password(args)}
    _shown_once(console, api.json("POST", path, body=body), args.json)
    return 0


ACCOUNT_COMMANDS = {
    "list": accounts_list,
    "add": accounts_add,
    "disable": accounts_disable,
    "enable": accounts_enable,
    "role": accounts_role,
    "reset-password": accounts_reset_password,
}


def run(args: argparse.Namespace, api: Api, console: Console) -> int:
    out = args.json
    cmd = (args.group, getattr(args, "action", None))
    if args.group == "accounts":
        return ACCOUNT_COMMANDS[args.action](args, api, console)

    def show(value: Any) -> None:
        console.print_json(json.dumps(value, ensure_ascii=False)) if out else console.print(value)

    if cmd == ("registry", "import"):
        result = api.json(
            "POST",
            "/v1/registry/imports",
            raw=Path(args.file).read_bytes(),
            content_type="text/csv",
            query={"dry_run": "true" if args.dry_run else "false"},
        )
        if out:
            show(result)
        else:
            console.print(
                f"{'dry run: ' if result['dry_run'] else ''}{result['inserted']} inserted, "
                f"{result['updated']} updated, {result['unchanged']} unchanged, "
                f"{result['rejected']} rejected ({result['encoding']})"
            )
            if result["rejects"]:
                _table(console, "rejected rows", result["rejects"], ["line", "cert_no", "reason"])
        return 1 if result["rejected"] else 0
    if cmd == ("merchants", "list"):
        query = {"district": args.district} if args.district else None
        merchants = api.json("GET", "/v1/merchants", query=query)["merchants"]
        if out:
            show(merchants)
        else:
            _table(
                console,
                "merchants",
                merchants,
                ["id", "name", "district", "admitted", "permitted", "status", "active_terminals"],
            )
        return 0
    if cmd == ("merchants", "add"):
        show(api.json("POST", "/v1/merchants", body={"name": args.name, "district": args.district}))
        return 0
    flags = {
        "admit": ("admission", "admitted", True),
        "unadmit": ("admission", "admitted", False),
        "permit": ("permission", "permitted", True),
        "withdraw": ("permission", "permitted", False),
        "suspend": ("suspension", "suspended", True),
        "resume": ("suspension", "suspended", False),
    }
    if args.group == "merchants" and args.action in flags:
        path, field, value = flags[args.action]
        show(
            api.json(
                "POST",
                f"/v1/merchants/{args.merchant_id}/{path}",
                body={field: value, "reason": args.reason},
            )
        )
        return 0
    if cmd == ("terminals", "issue"):
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
        show(issued)
        return 0
    if cmd == ("terminals", "revoke"):
        show(
            api.json(
                "POST", f"/v1/terminals/{args.terminal_id}/revocation", body={"reason": args.reason}
            )
        )
        return 0
    if cmd == ("campaigns", "list"):
        campaigns = api.json("GET", "/v1/campaigns", auth=False)["campaigns"]
        rows = [{k: c[k] for k in ("id", "name", "claim_opens", "hard_end")} for c in campaigns]
        show(campaigns) if out else _table(
            console, "campaigns", rows, ["id", "name", "claim_opens", "hard_end"]
        )
        return 0
    if cmd == ("campaigns", "show"):
        campaigns = api.json("GET", "/v1/campaigns", auth=False)["campaigns"]
        found = [c for c in campaigns if c["id"] == args.campaign_id]
        if not found:
            raise CliError(f"no campaign {args.campaign_id}")
        console.print_json(json.dumps(found[0], ensure_ascii=False))
        return 0
    if cmd == ("campaigns", "load"):
        loaded = api.json(
            "POST",
            "/v1/campaigns",
            raw=Path(args.file).read_bytes(),
            content_type="application/toml",
        )
        show(loaded) if out else console.print(f"{loaded['id']}: loaded ({loaded['name']})")
        return 0
    if cmd == ("campaigns", "check"):
        try:
            campaign = load_campaign(args.file)
        except CampaignConfigInvalid as exc:
            console.print(f"[red]{exc.message}[/red]")
            for problem in exc.details.get("problems", []):  # type: ignore[union-attr]
                console.print(f"  {problem}")
            return 1
        console.print(f"{campaign.id}: valid ({campaign.name})")
        return 0
    if cmd == ("citizens", "revoke"):
        number = _secret_line("ID number: ")
        show(
            api.json(
                "POST", "/v1/citizens/revocation", body={"id_number": number, "reason": args.reason}
            )
        )
        return 0
    if cmd == ("settlements", "build"):
        batch = api.json(
            "POST",
            "/v1/settlements",
            body={"campaign_id": args.campaign_id, "district": args.district, "month": args.month},
        )
        _print_batch(console, batch, out)
        return 0
    if cmd == ("settlements", "show"):
        _print_batch(console, api.json("GET", f"/v1/settlements/{args.settlement_id}"), out)
        return 0
    if args.group == "settlements" and args.action in ("review", "approve", "pay"):
        body: dict[str, str] = {"step": args.action}
        if args.note:
            body["note"] = args.note
        _print_batch(
            console, api.json("POST", f"/v1/settlements/{args.settlement_id}/steps", body=body), out
        )
        return 0
    if cmd == ("settlements", "csv"):
        _, payload, _ = api.call("GET", f"/v1/settlements/{args.settlement_id}/csv")
        Path(args.output).write_bytes(payload)
        console.print(f"wrote {args.output}")
        return 0
    if cmd == ("reports", "ranking"):
        fmt = {"table": "json", "csv": "csv", "png": "png"}[args.format]
        query = {"month": args.month, "format": fmt}
        _, payload, _ = api.call("GET", "/v1/reports/ranking", query=query)
        if fmt != "json":
            if not args.output:
                raise CliError("--output is needed for csv and png")
            Path(args.output).write_bytes(payload)
            console.print(f"wrote {args.output}")
            return 0
        ranking = json.loads(payload)
        rows = [
            {
                **d,
                "value": format_yuan(d["value_redeemed_fen"]),
                "rate": f"{d['redemption_rate_bp'] / 100:.2f}%",
            }
            for d in ranking["districts"]
        ]
        show(ranking) if out else _table(
            console,
            f"district ranking {ranking['month']}",
            rows,
            ["rank", "name", "claims", "vouchers_issued", "vouchers_redeemed", "value", "rate"],
        )
        return 0
    if cmd == ("audit", None):
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
        show(entries) if out else _table(
            console, "audit log", entries, ["at", "actor", "action", "subject", "reason"]
        )
        return 0
    raise CliError(f"unknown command {cmd}")


def _print_batch(console: Console, batch: dict[str, Any], as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(batch, ensure_ascii=False))
        return
    console.print(
        f"settlement {batch['settlement_id']} · {batch['campaign_id']} · {batch['district']} · "
        f"{batch['month']} · [bold]{batch['status']}[/bold] · {batch['redemption_count']} bills, "
        f"{batch['voucher_count']} vouchers, {format_yuan(batch['amount_fen'])} 元"
    )
    rows = [{**x, "amount": format_yuan(x["amount_fen"])} for x in batch["lines"]]
    _table(
        console,
        "per merchant",
        rows,
        ["merchant_id", "merchant_name", "redemptions", "vouchers", "amount"],
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="voucherctl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--server", default=os.environ.get("VOUCHER_SERVER", "http://127.0.0.1:8080"))
    p.add_argument("--user", default=os.environ.get("VOUCHER_USER"))
    p.add_argument("--json", action="store_true", help="machine-readable output")
    groups = p.add_subparsers(dest="group", required=True)

    registry = groups.add_parser("registry").add_subparsers(dest="action", required=True)
    imp = registry.add_parser("import", help="import the registration office's CSV (UTF-8 or GBK)")
    imp.add_argument("file")
    imp.add_argument("--dry-run", action="store_true")

    merchants = groups.add_parser("merchants").add_subparsers(dest="action", required=True)
    merchants.add_parser("list").add_argument("--district")
    add = merchants.add_parser("add")
    add.add_argument("name")
    add.add_argument("district")
    for action in ("admit", "unadmit", "permit", "withdraw", "suspend", "resume"):
        sub = merchants.add_parser(action)
        sub.add_argument("merchant_id", type=int)
        sub.add_argument("--reason", required=True)

    terminals = groups.add_parser("terminals").add_subparsers(dest="action", required=True)
    issue = terminals.add_parser("issue", help="issue a terminal; its credential is shown once")
    issue.add_argument("merchant_id", type=int)
    issue.add_argument("label")
    issue.add_argument("--qr", help="write the pairing QR code (SVG) here")
    issue.add_argument("--pairing-file", help="write the pairing JSON here (mode 0600)")
    revoke = terminals.add_parser("revoke")
    revoke.add_argument("terminal_id", type=int)
    revoke.add_argument("--reason", required=True)

    campaigns = groups.add_parser("campaigns").add_subparsers(dest="action", required=True)
    campaigns.add_parser("list")
    campaigns.add_parser("show").add_argument("campaign_id")
    campaigns.add_parser("check", help="validate a campaign file (rule C1)").add_argument("file")
    campaigns.add_parser("load", help="load a campaign file into the server (C1)").add_argument(
        "file"
    )

    citizens = groups.add_parser("citizens").add_subparsers(dest="action", required=True)
    crev = citizens.add_parser("revoke", help="revoke participation; the ID number is prompted")
    crev.add_argument("--reason", required=True)

    _account_parsers(groups)

    settlements = groups.add_parser("settlements").add_subparsers(dest="action", required=True)
    build = settlements.add_parser("build")
    build.add_argument("campaign_id")
    build.add_argument("district")
    build.add_argument("month", help="YYYY-MM")
    settlements.add_parser("show").add_argument("settlement_id", type=int)
    for action in ("review", "approve", "pay"):
        sub = settlements.add_parser(action)
        sub.add_argument("settlement_id", type=int)
        sub.add_argument("--note")
    scsv = settlements.add_parser("csv")
    scsv.add_argument("settlement_id", type=int)
    scsv.add_argument("-o", "--output", required=True)

    reports = groups.add_parser("reports").add_subparsers(dest="action", required=True)
    ranking = reports.add_parser("ranking")
    ranking.add_argument("month", help="YYYY-MM")
    ranking.add_argument("--format", choices=("table", "csv", "png"), default="table")
    ranking.add_argument("-o", "--output")

    audit = groups.add_parser("audit")
    audit.add_argument("--actor")
    audit.add_argument("--action", dest="action_filter")
    audit.add_argument("--from", dest="date_from")
    audit.add_argument("--to", dest="date_to")
    groups.add_parser("loadtest", help="the load test: see voucherctl loadtest --help")
    return p


def _account_parsers(groups: Any) -> None:
    """voucherctl accounts ...: the city manages every account, a merchant manager their
    shop's manager accounts (rule X2); every change needs a --reason (it is audited)."""
    accounts = groups.add_parser("accounts", help="staff accounts (X2)").add_subparsers(
        dest="action", required=True
    )
    accounts.add_parser("list").add_argument("--role")
    roles = ("merchant_manager", "district_operator", "city_operator", "auditor")
    for action in ("add", "role"):
        sub = accounts.add_parser(action)
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
    for action in ("disable", "enable", "reset-password"):
        sub = accounts.add_parser(action)
        sub.add_argument("username")
        sub.add_argument("--reason", required=True)
        if action == "reset-password":
            sub.add_argument("--password-stdin", action="store_true")


def main(argv: Sequence[str] | None = None, *, console: Console | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["loadtest"]:
        from server import loadtest

        return loadtest.main(argv[1:])
    args = parser().parse_args(argv)
    console = console or Console()
    needs_login = not (args.group == "campaigns" and args.action in ("list", "show", "check"))
    password = ""
    if needs_login:
        if not args.user:
            console.print("[red]--user (or VOUCHER_USER) is needed[/red]")
            return 2
        password = os.environ.get("VOUCHER_PASSWORD") or getpass.getpass(
            f"password for {args.user}: "
        )
    try:
        return run(args, Api(args.server, args.user or "", password), console)
    except CliError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
