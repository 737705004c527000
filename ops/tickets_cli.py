"""``voucherctl``'s house-ticket commands (issue 13, rules T1-T14), for the issuers, the
housing bureau and the city's finance side, over ``client/ticket_office.py``:

    voucherctl tickets issue AGREEMENT.json | show ID | find NUMBER | list PROGRAMME
    voucherctl tickets split|transfer|heir|lost|reissue|home-kept|void|return|cashout ID ...
    voucherctl ticket-uses show|cancel|condition USE_ID ...
    voucherctl payouts list PROGRAMME | pay PAYOUT_ID | review-bonuses PROGRAMME
    voucherctl ticket-settlements build|list|show|review|approve|pay ...
    voucherctl developers add NAME DISTRICT | exit-notice MERCHANT_ID ...
    voucherctl listings import FILE | list PROGRAMME | admit|remove LISTING_ID...
    voucherctl reports tickets PROGRAMME [--format table|csv]

ID numbers are never arguments (rule X3): an agreement's are in its file; a transfer's or an
heir's are read from a prompt or standard input (the new holder first, then the household
members, one per line, an empty line to end). Money is given in 元 (``650000.50``) and shown
in 元; output is Chinese unless ``--lang en``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from client import ticket_office as office
from client.ticket_office import TicketFile, TicketSettlement, UseFile
from ops.cli import Api, CliError, Command, Out, _row, _secret_line, _write
from shared.errors import InvalidInput
from shared.money import format_yuan, parse_yuan

# words, (Chinese, English)
STATUS = {
    "active": ("有效", "active"),
    "lost": ("挂失中", "reported lost"),
    "split": ("已分割", "split"),
    "returned": ("已退回", "returned"),
    "void": ("已作废", "void"),
    "pending": ("待审核", "pending"),
    "admitted": ("已入库", "admitted"),
    "removed": ("已移出", "removed"),
    "draft": ("待复核", "draft"),
    "reviewed": ("已复核", "reviewed"),
    "approved": ("已批准", "approved"),
    "paid": ("已支付", "paid"),
}
KINDS = {
    "cashout": ("结余兑付", "cash-out"),
    "bonus": ("使用奖励", "bonus"),
    "full": ("全额", "full"),
    "first": ("首付90%", "first 90%"),
    "holdback": ("尾款10%", "holdback 10%"),
    "clawback": ("追回", "clawback"),
}
SCOPES = {
    "programme": ("全市", "programme"),
    "district": ("区", "district"),
    "seller": ("开发企业", "seller"),
}


def _yuan(fen: int) -> str:
    return format_yuan(fen, thousands=True)


def _word(out: Out, table: dict[str, tuple[str, str]], key: str) -> str:
    return out.pick(table.get(key, (key, key)))


def _fen(text: str) -> int:
    try:
        return parse_yuan(text, positive=True)
    except InvalidInput as exc:
        raise CliError(f"{text!r}: {exc.message}") from exc


# --- tickets (T1-T3, T6, T9, T13) ---------------------------------------------------------


def _print_file(out: Out, found: TicketFile) -> None:
    if out.as_json:
        out.json(found)
        return
    t, s = found.ticket, found.summary
    zh = out.lang == "zh"
    out.line(
        f"房票 {t.number}（#{t.id}，{t.district}）{_word(out, STATUS, t.status)}：持有人 {t.holder}"
        if zh
        else f"ticket {t.number} (#{t.id}, {t.district}) {_word(out, STATUS, t.status)}: "
        f"holder {t.holder}"
    )
    out.line(
        f"票面 {_yuan(s.face_value_fen)} 元 · 余额 {_yuan(s.balance_fen)} 元 · 已用 "
        f"{_yuan(s.used_fen)} 元 · 已兑付 {_yuan(s.cashed_out_fen)} 元 · 购房补贴 "
        f"{_yuan(s.subsidy_fen)} 元 · 政策性奖励 {_yuan(s.reward_fen)} 元 · 有效期至 {t.deadline}"
        if zh
        else f"face {_yuan(s.face_value_fen)} · balance {_yuan(s.balance_fen)} · used "
        f"{_yuan(s.used_fen)} · cashed out {_yuan(s.cashed_out_fen)} · subsidies "
        f"{_yuan(s.subsidy_fen)} · rewards {_yuan(s.reward_fen)} · valid until {t.deadline}"
    )
    if t.home_kept_on:
        out.line(
            f"已核实家庭保有住房（T4）：{t.home_kept_doc}，{t.home_kept_on}"
            if zh
            else f"household keeps a home (T4): {t.home_kept_doc}, {t.home_kept_on}"
        )
    if found.replacement_opens_on:
        out.line(
            f"可申请补办日期：{found.replacement_opens_on}"
            if zh
            else f"a replacement may be asked from {found.replacement_opens_on}"
        )
    if len(found.family) > 1:
        rows = [
            _row(p, status=_word(out, STATUS, p.status), balance=_yuan(p.balance_fen))
            for p in found.family
        ]
        out.table("房票及分割票" if zh else "family", rows, ["id", "number", "status", "balance"])
    rows = [
        {
            "at": e.at[:19].replace("T", " "),
            "act": e.act,
            "amount": "" if e.amount_fen is None else _yuan(e.amount_fen),
            "documents": "; ".join(f"{k}={v}" for k, v in e.documents.items()),
            "actor": e.actor,
        }
        for e in found.events
    ]
    title = "办理记录" if zh else "audit trail"
    out.table(title, rows, ["at", "act", "amount", "documents", "actor"], wide=("documents",))


def tickets_issue(args: argparse.Namespace, api: Api, out: Out) -> int:
    """The agreement as JSON (ID numbers in the file, never the command line: X3)."""
    try:
        agreement = json.loads(Path(args.file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CliError(f"{args.file}: not a JSON agreement: {exc}") from exc
    _print_file(out, api(lambda c: office.issue(c, agreement)))
    return 0


def tickets_show(args: argparse.Namespace, api: Api, out: Out) -> int:
    _print_file(out, api(lambda c: office.ticket(c, args.ticket_id)))
    return 0


def tickets_find(args: argparse.Namespace, api: Api, out: Out) -> int:
    found = api(lambda c: office.find(c, {"number": args.number}))
    _print_file(out, api(lambda c: office.ticket(c, found.tickets[0].id)))
    return 0


def tickets_list(args: argparse.Namespace, api: Api, out: Out) -> int:
    query = {
        "campaign_id": args.campaign_id,
        **({"district": args.district} if args.district else {}),
    }
    found = api(lambda c: office.find(c, query))
    if out.as_json:
        out.json(found)
        return 0
    rows = [
        _row(
            t,
            status=_word(out, STATUS, t.status),
            face=_yuan(t.face_value_fen),
            balance=_yuan(t.balance_fen),
        )
        for t in found.tickets
    ]
    columns = ["id", "number", "district", "holder", "status", "face", "balance", "deadline"]
    out.table("房票" if out.lang == "zh" else "tickets", rows, columns)
    return 0


def _persons(prompt: str) -> list[str]:
    """ID numbers from a prompt or standard input, one a line, until an empty line (X3)."""
    found: list[str] = []
    while True:
        line = _secret_line(prompt if not found else "household member (empty to end): ")
        if not line:
            return found
        found.append(line)


def _act(act: str, body_of: Callable[[argparse.Namespace], dict[str, Any]]) -> Command:
    def run(args: argparse.Namespace, api: Api, out: Out) -> int:
        body = body_of(args)
        _print_file(out, api(lambda c: office.act(c, args.ticket_id, act, body)))
        return 0

    return run


def _split(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "amounts": [_fen(a) for a in args.amounts.split(",")],
        "numbers": args.numbers.split(","),
        "application_no": args.application_no,
    }


def _transfer(args: argparse.Namespace) -> dict[str, Any]:
    holder, *household = _persons("new holder's ID number: ") or [""]
    return {
        "to_holder_id_number": holder,
        "to_household_id_numbers": household,
        "home_in_city": args.home_in_city,
        "all_members_signed": args.all_members_signed,
        "notary_no": args.notary_no,
    }


def _heir(args: argparse.Namespace) -> dict[str, Any]:
    heir, *household = _persons("heir's ID number: ") or [""]
    return {
        "heir_id_number": heir,
        "heir_household_id_numbers": household,
        "certificate_no": args.certificate_no,
    }


ACTS: dict[str, tuple[Callable[[argparse.Namespace], dict[str, Any]], str]] = {
    "split": (_split, "T6: pieces' amounts in 元 and new numbers, comma-separated"),
    "transfer": (_transfer, "T3: the new holder's ID number (and household) from stdin"),
    "heir": (_heir, "T3: the heir's ID number (and household) from stdin"),
    "lost": (lambda a: {"newspaper": a.newspaper, "published_on": a.published_on}, "T13"),
    "reissue": (lambda a: {"new_number": a.new_number}, "T13: after the notice"),
    "home-kept": (
        lambda a: {"document_no": a.document_no},
        "T4 (Suining): the household keeps a home, on this document",
    ),
    "void": (lambda a: {"decision_no": a.decision_no}, "T1: never used"),
    "return": (lambda a: {"agreement_no": a.agreement_no}, "T2: an expired balance"),
    "cashout": (lambda a: {"application_no": a.application_no}, "T9: from 90%% used"),
}
PATHS = {"lost": "loss"}  # the act's route where it is not its name


# --- uses (T11, T12) ------------------------------------------------------------------------


def _print_use(out: Out, found: UseFile) -> None:
    if out.as_json:
        out.json(found)
        return
    zh = out.lang == "zh"
    state = ("已解除" if zh else "cancelled") if found.cancelled else ("有效" if zh else "live")
    out.line(
        f"合同 {found.contract_no}（#{found.use_id}）{found.merchant_name} {found.unit}：{state}"
    )
    out.line(
        f"房票金额 {_yuan(found.amount_fen)} 元 · 补贴 {_yuan(found.subsidy_fen)} 元 · 奖励 "
        f"{_yuan(found.reward_fen)} 元 · 应结算 {_yuan(found.seller_due_fen)} 元 · 已结算 "
        f"{_yuan(found.settled_fen)} 元"
        if zh
        else f"ticket amount {_yuan(found.amount_fen)} · subsidy {_yuan(found.subsidy_fen)} · "
        f"reward {_yuan(found.reward_fen)} · due {_yuan(found.seller_due_fen)} · settled "
        f"{_yuan(found.settled_fen)}"
    )
    rows = [_row(c) for c in found.conditions]
    out.table("结算条件" if zh else "conditions", rows, ["condition", "recorded_on", "document_no"])


def uses_show(args: argparse.Namespace, api: Api, out: Out) -> int:
    _print_use(out, api(lambda c: office.use(c, args.use_id)))
    return 0


def uses_cancel(args: argparse.Namespace, api: Api, out: Out) -> int:
    body = {"proof_no": args.proof_no, "elect": args.elect}
    _print_use(out, api(lambda c: office.use_act(c, args.use_id, "cancellation", body)))
    return 0


def uses_condition(args: argparse.Namespace, api: Api, out: Out) -> int:
    body = {"condition": args.condition, "recorded_on": args.on, "document_no": args.document_no}
    _print_use(out, api(lambda c: office.use_act(c, args.use_id, "conditions", body)))
    return 0


# --- payouts (T9, T10) ----------------------------------------------------------------------


def _payout_rows(out: Out, found: Any) -> list[dict[str, Any]]:
    return [_row(p, kind=_word(out, KINDS, p.kind), amount=_yuan(p.amount_fen)) for p in found]


PAYOUT_COLUMNS = ["id", "number", "kind", "amount", "due_by", "decided_on", "paid_on", "payment_no"]


def payouts_list(args: argparse.Namespace, api: Api, out: Out) -> int:
    found = api(lambda c: office.payouts(c, args.campaign_id, unpaid=args.unpaid))
    if out.as_json:
        out.json(found)
    else:
        out.table(
            "兑付" if out.lang == "zh" else "payouts",
            _payout_rows(out, found.payouts),
            PAYOUT_COLUMNS,
        )
    return 0


def payouts_pay(args: argparse.Namespace, api: Api, out: Out) -> int:
    paid = api(lambda c: office.pay(c, args.payout_id, args.payment_no))
    if out.as_json:
        out.json(paid)
    else:
        out.table(
            "已支付" if out.lang == "zh" else "paid", _payout_rows(out, [paid]), PAYOUT_COLUMNS
        )
    return 0


def payouts_review_bonuses(args: argparse.Namespace, api: Api, out: Out) -> int:
    done = api(lambda c: office.review_bonuses(c, args.campaign_id, args.review_no))
    if out.as_json:
        out.json(done)
        return 0
    zh = out.lang == "zh"
    out.line(
        f"核定使用奖励 {len(done.reviewed)} 户；未达奖励比例 {done.none_due} 户；"
        f"未满12个月 {done.not_yet} 户"
        if zh
        else f"{len(done.reviewed)} bonuses reviewed; {done.none_due} earn none; "
        f"{done.not_yet} not yet 12 months"
    )
    out.table("使用奖励" if zh else "bonuses", _payout_rows(out, done.reviewed), PAYOUT_COLUMNS)
    return 0


# --- settlements with the sellers (T12) -----------------------------------------------------


def _print_settlement(out: Out, found: TicketSettlement) -> None:
    if out.as_json:
        out.json(found)
        return
    zh = out.lang == "zh"
    out.line(
        f"结算 {found.settlement_id} · {found.campaign_id} · {found.district} · 结算点 "
        f"{found.point} · {_word(out, STATUS, found.status)} · {_yuan(found.amount_fen)} 元 · "
        f"付款期限 {found.payment_due}"
        if zh
        else f"settlement {found.settlement_id} · {found.campaign_id} · {found.district} · "
        f"point {found.point} · {_word(out, STATUS, found.status)} · "
        f"{_yuan(found.amount_fen)} · pay by {found.payment_due}"
    )
    rows = [
        _row(x, kind=_word(out, KINDS, x.kind), amount=_yuan(x.amount_fen)) for x in found.lines
    ]
    columns = ["merchant_name", "contract_no", "kind", "amount"]
    out.table("结算明细" if zh else "lines", rows, columns, wide=("merchant_name",))


def settlements_build(args: argparse.Namespace, api: Api, out: Out) -> int:
    made = api(lambda c: office.build_settlement(c, args.campaign_id, args.district, args.point))
    _print_settlement(out, made)
    return 0


def settlements_show(args: argparse.Namespace, api: Api, out: Out) -> int:
    _print_settlement(out, api(lambda c: office.settlement(c, args.settlement_id)))
    return 0


def settlements_list(args: argparse.Namespace, api: Api, out: Out) -> int:
    query = {k: v for k, v in (("campaign_id", args.campaign_id), ("district", args.district)) if v}
    found = api(lambda c: office.settlements(c, query))
    if out.as_json:
        out.json(found)
        return 0
    rows = [
        _row(s, status=_word(out, STATUS, s.status), amount=_yuan(s.amount_fen))
        for s in found.settlements
    ]
    columns = [
        "settlement_id",
        "campaign_id",
        "district",
        "point",
        "status",
        "amount",
        "payment_due",
    ]
    out.table("开发企业结算" if out.lang == "zh" else "settlements", rows, columns)
    return 0


def settlements_step(args: argparse.Namespace, api: Api, out: Out) -> int:
    step = args.action
    _print_settlement(
        out, api(lambda c: office.settlement_step(c, args.settlement_id, step, args.note))
    )
    return 0


# --- the listing pool (T4) ------------------------------------------------------------------


def developers_add(args: argparse.Namespace, api: Api, out: Out) -> int:
    made = api(lambda c: office.add_developer(c, args.name, args.district))
    if out.as_json:
        out.json(made)
    else:
        out.line(
            f"开发企业 {made.id} {made.name}（{made.district}）已添加，待住建部门准入"
            if out.lang == "zh"
            else f"developer {made.id} {made.name} ({made.district}) added, to be admitted"
        )
    return 0


def developers_exit(args: argparse.Namespace, api: Api, out: Out) -> int:
    done = api(
        lambda c: office.exit_notice(c, args.merchant_id, args.campaign_id, args.on, args.reason)
    )
    if out.as_json:
        out.json(done)
    else:
        out.line(
            f"开发企业 {done.merchant_id} 于 {done.notice_on} 申请退出，{done.units} 套房源于 "
            f"{done.exits_on} 后退出房源库"
            if out.lang == "zh"
            else f"developer {done.merchant_id} gave notice on {done.notice_on}: {done.units} "
            f"units leave the pool after {done.exits_on}"
        )
    return 0


def listings_import(args: argparse.Namespace, api: Api, out: Out) -> int:
    data = Path(args.file).read_bytes()
    result = api(
        lambda c: office.import_units(c, args.campaign, args.merchant, data, dry_run=args.dry_run)
    )
    failed = 1 if result.rejected else 0
    if out.as_json:
        out.json(result)
        return failed
    zh = out.lang == "zh"
    out.line(
        f"{'试导入：' if result.dry_run else ''}新增 {result.inserted}，更新 {result.updated}，"
        f"未变 {result.unchanged}，退回 {result.rejected}（{result.encoding}）"
        if zh
        else f"{'dry run: ' if result.dry_run else ''}{result.inserted} inserted, "
        f"{result.updated} updated, {result.unchanged} unchanged, {result.rejected} rejected "
        f"({result.encoding})"
    )
    if result.rejects:
        rows = [
            {"line": r.line, "unit": r.unit, "reasons": _reasons(r, out.lang)}
            for r in result.rejects
        ]
        out.table(
            "退回的行" if zh else "rejected rows",
            rows,
            ["line", "unit", "reasons"],
            wide=("reasons",),
        )
    return failed


def _reasons(reject: office.ListingReject, lang: str) -> str:
    """Every reason of a rejected row, one per line, in the chosen language."""
    return "\n".join((r.message_zh if lang == "zh" else r.message) for r in reject.reasons)


def listings_list(args: argparse.Namespace, api: Api, out: Out) -> int:
    query = {"campaign_id": args.campaign_id}
    for key in ("merchant_id", "district", "status"):
        value = getattr(args, key)
        if value is not None:
            query[key] = str(value)
    found = api(lambda c: office.units(c, query))
    if out.as_json:
        out.json(found)
        return 0
    rows = [
        _row(
            u,
            status=_word(out, STATUS, u.status),
            area=f"{u.area_dm2 // 100}.{u.area_dm2 % 100:02d}",
            price=_yuan(u.listed_price_fen),
        )
        for u in found.units
    ]
    columns = [
        "id",
        "merchant_name",
        "unit",
        "district",
        "property_type",
        "area",
        "price",
        "status",
        "exits_on",
    ]
    out.table(
        "房源库" if out.lang == "zh" else "listing pool", rows, columns, wide=("merchant_name",)
    )
    return 0


def listings_status(args: argparse.Namespace, api: Api, out: Out) -> int:
    status = {"admit": "admitted", "remove": "removed"}[args.action]
    found = api(lambda c: office.set_units(c, args.listing_ids, status, args.reason))
    if out.as_json:
        out.json(found)
    else:
        out.line(
            f"{len(found.units)} 套房源：{_word(out, STATUS, status)}"
            if out.lang == "zh"
            else f"{len(found.units)} units {_word(out, STATUS, status)}"
        )
    return 0


# --- the report (T14) -----------------------------------------------------------------------

MONEY_COLUMNS = (
    "face_fen",
    "used_fen",
    "cashed_out_fen",
    "returned_fen",
    "expired_fen",
    "balance_fen",
    "subsidy_fen",
    "reward_fen",
    "bonus_fen",
    "settlement_due_fen",
    "settlement_paid_fen",
)


def reports_tickets(args: argparse.Namespace, api: Api, out: Out) -> int:
    """Rule T14: per programme, district and seller, in Chinese (money in 元)."""
    if args.format == "csv":
        payload = api(lambda c: office.report_csv(c, args.campaign_id, args.on))
        _write(out, payload, args.output, text=True)
        return 0
    found = api(lambda c: office.report(c, args.campaign_id, args.on))
    if out.as_json:
        out.json(found)
        return 0
    english = {"scope": "scope", "key": "name"}
    headings = {
        k: (v if out.lang == "zh" else english.get(k, k.removesuffix("_fen")))
        for k, v in found.columns.items()
    }
    rows = []
    for r in found.rows:
        row = {
            headings["scope"]: _word(out, SCOPES, r.scope),
            headings["key"]: r.name,
            headings["issued"]: r.issued,
        }
        row |= {headings[k]: _yuan(getattr(r, k)) for k in MONEY_COLUMNS}
        rows.append(row)
    title = (
        f"房票统计 {found.campaign_id} · {found.on}"
        if out.lang == "zh"
        else f"report {found.campaign_id} · {found.on}"
    )
    out.table(title, rows, list(headings.values()), wide=(headings["key"],))
    return 0


# --- the parsers ----------------------------------------------------------------------------


def add_parsers(groups: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    """The house-ticket groups of voucherctl (issue 13)."""
    tickets = groups.add_parser("tickets", help="house tickets at the issuer (T1-T13)")
    acts = tickets.add_subparsers(dest="action", required=True)
    command(acts, "issue", tickets_issue, help="from an agreement's JSON file").add_argument("file")
    command(acts, "show", tickets_show).add_argument("ticket_id", type=int)
    command(acts, "find", tickets_find).add_argument("number")
    listing = command(acts, "list", tickets_list)
    listing.add_argument("campaign_id")
    listing.add_argument("--district")
    for name, (body_of, help_text) in ACTS.items():
        sub = command(acts, name, _act(PATHS.get(name, name), body_of), help=help_text)
        sub.add_argument("ticket_id", type=int)
        for option in _OPTIONS[name]:
            flag = "--" + option.replace("_", "-")
            if option in ("home_in_city", "all_members_signed"):
                sub.add_argument(flag, action="store_true")
            else:
                sub.add_argument(flag, dest=option, required=True)

    uses = groups.add_parser("ticket-uses", help="a contract paid with tickets (T11, T12)")
    uses = uses.add_subparsers(dest="action", required=True)
    command(uses, "show", uses_show).add_argument("use_id", type=int)
    cancel = command(uses, "cancel", uses_cancel, help="T11: the issuer reverses a contract")
    cancel.add_argument("use_id", type=int)
    cancel.add_argument("--proof-no", required=True)
    cancel.add_argument("--elect", choices=("reissue", "other_compensation"), default="reissue")
    condition = command(uses, "condition", uses_condition, help="T12: a settlement condition")
    condition.add_argument("use_id", type=int)
    condition.add_argument(
        "condition", choices=("filed", "fees_paid", "delivered", "stub_surrendered", "certificate")
    )
    condition.add_argument("--on", required=True, help="YYYY-MM-DD")
    condition.add_argument("--document-no", required=True)

    payouts = groups.add_parser("payouts", help="cash-outs and bonuses (T9, T10)")
    payouts = payouts.add_subparsers(dest="action", required=True)
    plist = command(payouts, "list", payouts_list)
    plist.add_argument("campaign_id")
    plist.add_argument("--unpaid", action="store_true")
    pay = command(payouts, "pay", payouts_pay)
    pay.add_argument("payout_id", type=int)
    pay.add_argument("--payment-no", required=True)
    review = command(payouts, "review-bonuses", payouts_review_bonuses, help="T10: at 12 months")
    review.add_argument("campaign_id")
    review.add_argument("--review-no", required=True)

    settle = groups.add_parser("ticket-settlements", help="with the developers (T12)")
    settle = settle.add_subparsers(dest="action", required=True)
    build = command(settle, "build", settlements_build)
    build.add_argument("campaign_id")
    build.add_argument("district")
    build.add_argument("point", help="YYYY-MM-DD, a settlement point")
    slist = command(settle, "list", settlements_list)
    slist.add_argument("--campaign-id")
    slist.add_argument("--district")
    command(settle, "show", settlements_show).add_argument("settlement_id", type=int)
    for step in ("review", "approve", "pay"):
        sub = command(settle, step, settlements_step)
        sub.add_argument("settlement_id", type=int)
        sub.add_argument("--note")

    developers = groups.add_parser("developers", help="the listing pool's sellers (T4)")
    developers = developers.add_subparsers(dest="action", required=True)
    add = command(developers, "add", developers_add)
    add.add_argument("name")
    add.add_argument("district")
    leave = command(developers, "exit-notice", developers_exit)
    leave.add_argument("merchant_id", type=int)
    leave.add_argument("--campaign-id", required=True)
    leave.add_argument("--on", required=True, help="the notice's date, YYYY-MM-DD")
    leave.add_argument("--reason", required=True)

    pool = groups.add_parser("listings", help="the listing pool's units (T4)")
    pool = pool.add_subparsers(dest="action", required=True)
    imp = command(pool, "import", listings_import, help="a developer's CSV (UTF-8 or GBK)")
    imp.add_argument("file")
    imp.add_argument("--campaign", required=True)
    imp.add_argument("--merchant", type=int, required=True)
    imp.add_argument("--dry-run", action="store_true")
    llist = command(pool, "list", listings_list)
    llist.add_argument("campaign_id")
    llist.add_argument("--merchant-id", type=int)
    llist.add_argument("--district")
    llist.add_argument("--status", choices=("pending", "admitted", "removed"))
    for action in ("admit", "remove"):
        sub = command(pool, action, listings_status)
        sub.add_argument("listing_ids", type=int, nargs="+")
        sub.add_argument("--reason", required=True)


def add_report_parser(reports: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    """``voucherctl reports tickets``: rule T14."""
    sub = command(reports, "tickets", reports_tickets, help="a house-ticket programme (T14)")
    sub.add_argument("campaign_id")
    sub.add_argument("--on", help="YYYY-MM-DD (default: today)")
    sub.add_argument("--format", choices=("table", "csv"), default="table")
    sub.add_argument("-o", "--output", help="a file (csv: default standard output)")


_OPTIONS: dict[str, tuple[str, ...]] = {
    "split": ("amounts", "numbers", "application_no"),
    "transfer": ("notary_no", "home_in_city", "all_members_signed"),
    "heir": ("certificate_no",),
    "lost": ("newspaper", "published_on"),
    "reissue": ("new_number",),
    "home-kept": ("document_no",),
    "void": ("decision_no",),
    "return": ("agreement_no",),
    "cashout": ("application_no",),
}
