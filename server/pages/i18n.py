"""The pages' words, Chinese first and English when asked (``?lang=en``, a cookie the language
switch sets, or the browser's Accept-Language). Refusals are shown in plain words by their
stable error code (``shared/errors.py``); an unknown code falls back to the error's message."""

from __future__ import annotations

from aiohttp import web

from server.pages import ticket_words

LANGS = ("zh", "en")
LANG_COOKIE = "lang"

# key -> (Chinese, English)
_WORDS: dict[str, tuple[str, str]] = {
    "site": ("聊城消费券", "Liaocheng consumption vouchers"),
    "switch": ("English", "中文"),
    "skip": ("跳到正文", "Skip to content"),
    "sign_out": ("退出登录", "Sign out"),
    "home_lead": (
        "请选择入口：市民钱包、商户管理或城区看板。",
        "Choose: the citizen's wallet, the merchant's pages or the districts' dashboard.",
    ),
    "wallet": ("我的消费券", "My vouchers"),
    "merchant": ("商户管理", "Merchant"),
    "ops": ("城区看板", "Dashboard"),
    # signing in
    "staff_sign_in": ("工作人员登录", "Staff sign-in"),
    "username": ("用户名", "Username"),
    "password": ("密码", "Password"),
    "sign_in": ("登录", "Sign in"),
    "signed_in_as": ("已登录：{who}", "Signed in as {who}"),
    "wrong_password": ("用户名或密码不正确。", "Unknown user or wrong password."),
    "session_over": ("请重新登录。", "Please sign in again."),
    "citizen_sign_in": ("实名登录", "Sign in with your real name"),
    "production_handover": (
        "正式环境中，请从本页打开聊城市实名认证 App 完成人脸核验；App 会把经过签名、只对本次"
        "登录有效的身份断言交回本站（POST /wallet/signin/assertion），本站验证后为您登录，"
        "不保存身份证号。",
        "In production, open the city's real-name app from this page for its face check; the "
        "app hands a signed identity assertion, good for this sign-in only, back to this site "
        "(POST /wallet/signin/assertion), which checks it and signs you in. Your ID number is "
        "never stored.",
    ),
    "demo_idp": (
        "演示环境：开发用身份提供方。输入演示身份证号即可登录（终端会显示演示号码）。",
        "Demo: the development identity provider. Enter the demo ID number the demo printed.",
    ),
    "id_number": ("身份证号", "ID number"),
    "idp_sign_in": ("用聊城市实名认证 App 登录", "Sign in with the city's real-name app"),
    "no_dev_idp": (
        "本服务器未开放演示登录，请从实名认证 App 进入。",
        "This server has no demo sign-in; open the wallet from the city's real-name app.",
    ),
    # wallet
    "hello": ("您好，{masked}", "Hello, {masked}"),
    "your_code": ("消费券码", "Your voucher code"),
    "code_alt": ("消费券码，请出示给收银员扫描", "Voucher code for the cashier to scan"),
    "refresh_in": ("{s} 秒后自动刷新", "Refreshes in {s} s"),
    "refresh_now": ("刷新消费券码", "New code"),
    "code_help": (
        "请把屏幕亮度调高，出示给收银员扫描。消费券码 {ttl} 秒内有效，只能使用一次。",
        "Turn the screen brightness up and show the code to the cashier. It is valid for "
        "{ttl} s and works once.",
    ),
    "offline": (
        "网络已断开：消费券码在倒计时结束前仍可使用，之后需要联网刷新。",
        "No network: the code works until the countdown ends; a new one needs the network.",
    ),
    "expired_code": ("消费券码已过期，请刷新。", "The code has expired: get a new one."),
    "used_now": ("已核销：{shop}，{n} 张，{time}", "Used: {shop}, {n} voucher(s), {time}"),
    "no_code": (
        "您还没有可用的消费券。请先在下方领取。",
        "You have no vouchers to use yet. Claim them below.",
    ),
    "vouchers": ("我的消费券", "My vouchers"),
    "available": ("可用", "Available"),
    "used": ("已使用", "Used"),
    "expired": ("已过期", "Expired"),
    "revoked": ("已收回", "Revoked"),
    "next_expiry": (
        "{n} 张将于 {day} 到期",
        "{n} voucher(s) expire on {day}",
    ),
    "claim": ("领取消费券", "Claim vouchers"),
    "certificate_no": ("不动产权证号", "Property certificate number"),
    "claim_button": ("领取", "Claim"),
    "claimed": (
        "领取成功：{n} 张消费券（每张 {face}），有效期至 {day}。",
        "Claimed: {n} vouchers ({face} each), valid until {day}.",
    ),
    "redemptions": ("使用记录", "Where you used them"),
    "shop": ("商户", "Shop"),
    "when": ("时间", "When"),
    "count": ("张数", "Vouchers"),
    "refunded": ("已退回 {n} 张", "{n} returned"),
    "none_yet": ("暂无记录。", "Nothing yet."),
    "claims": ("领取记录", "Claims"),
    "valid_until": ("有效期至", "Valid until"),
    # house tickets (issue 13, rules T2, T5-T10)
    "tickets": ("我的房票", "My house tickets"),
    "ticket_no": ("房票编号", "Ticket no."),
    "face_value": ("票面金额", "Face value"),
    "balance": ("余额", "Balance"),
    "used_amount": ("已使用", "Used"),
    "cashed_out": ("已兑付结余", "Balance paid out"),
    "ticket_returned": ("已退回", "Returned"),
    "ticket_transferred": ("已转让", "Passed on"),
    "ticket_passed_on": (
        "已转让：房票 {no}，{amount}，受让人 {who}",
        "Transferred: ticket {no}, {amount}, to {who}",
    ),
    "ticket_passed_to_heir": (
        "已由继承人承继：房票 {no}，{amount}，继承人 {who}",
        "Passed to an heir: ticket {no}, {amount}, to {who}",
    ),
    "subsidy": ("购房补贴", "Purchase subsidy"),
    "reward": ("政策性奖励", "Policy reward"),
    "ticket_deadline": ("使用期限至 {day}（当日 24 时止）", "Use by {day} (until midnight)"),
    "ticket_expired": (
        "已于 {day} 24 时过期，不能再使用；可向核发单位申请退回余额。",
        "Expired at midnight on {day}: it can no longer be used; ask the issuer to return "
        "the balance.",
    ),
    "cashout_due": (
        "可向核发单位申请兑付结余 {amount}",
        "You may ask the issuer to pay out {amount}",
    ),
    "cashout_due_by": ("，应于 {day} 前支付。", ", payable by {day}."),
    "cashout_below": (
        "累计使用达到票面金额的 {needed} 后，可申请兑付结余（目前已使用 {used}）。",
        "Once your uses reach {needed} of the face value, the balance may be paid out "
        "(used so far: {used}).",
    ),
    "cashout_below_shared": (
        "原房票（含已转让部分）累计使用达到原票面金额的 {needed} 后，可申请兑付您持有的结余"
        "（目前共已使用 {used}）。",
        "Once the uses of the original ticket, transferred pieces included, reach {needed} of "
        "its face value, the balance you hold may be paid out (used so far: {used}).",
    ),
    "bonus_reviewed": (
        "使用奖励 {amount}（票面金额的 {rate}），应于 {day} 前兑付。",
        "Usage bonus {amount} ({rate} of the face value), payable by {day}.",
    ),
    "bonus_none": (
        "{day} 评定：使用比例未达到奖励标准，没有使用奖励。",
        "Reviewed on {day}: the usage did not reach a bonus tier.",
    ),
    "bonus_forecast": (
        "按目前使用情况，{day} 评定时可得使用奖励 {amount}（{rate}）。",
        "At the current usage, the review on {day} gives a usage bonus of {amount} ({rate}).",
    ),
    "ticket_uses": ("使用记录", "Uses"),
    "contract": ("合同 {no}", "Contract {no}"),
    "cancelled": ("已撤销", "cancelled"),
    "participation_revoked_banner": (
        "您的参与资格已被收回（{when}）：{reason}",
        "Your participation was revoked ({when}): {reason}",
    ),
    # merchant
    "day": ("当日", "Day"),
    "month": ("当月", "Month"),
    "terminals": ("收银台", "Tills"),
    "date": ("日期", "Date"),
    "show": ("查看", "Show"),
    "bills": ("笔数", "Bills"),
    "bill_total": ("账单金额", "Bill total"),
    "voucher_count": ("用券张数", "Vouchers"),
    "voucher_value": ("券面金额", "Voucher value"),
    "refunds": ("退款", "Refunds"),
    "returned": ("退回张数", "Returned"),
    "gross": ("核销总额", "Gross"),
    "net": ("净额", "Net"),
    "vouchers_gross": ("用券张数", "Vouchers (gross)"),
    "returned_value": ("退回券金额", "Value returned"),
    "vouchers_net": ("净用券", "Vouchers (net)"),
    "cash": ("收现", "Cash collected"),
    "cash_back": ("退现", "Cash handed back"),
    "per_till": ("按收银台", "Per till"),
    "till": ("收银台", "Till"),
    "receipt": ("小票号", "Receipt"),
    "time": ("时间", "Time"),
    "download_day": ("下载当日 CSV", "Download the day (CSV)"),
    "download_month": ("下载当月 CSV", "Download the month (CSV)"),
    "settlement": ("结算", "Settlement"),
    "status": ("状态", "Status"),
    "amount_due": ("应付金额", "Amount due"),
    "not_settled": (
        "本月尚未结算，未结算金额 {amount}。",
        "The month is not settled yet; {amount} unsettled.",
    ),
    "st_draft": ("草稿", "draft"),
    "st_reviewed": ("已审核", "reviewed"),
    "st_approved": ("已批准", "approved"),
    "st_paid": ("已支付", "paid"),
    "st_active": ("在用", "active"),
    "st_revoked": ("已停用", "revoked"),
    "last_used": ("最近使用", "Last used"),
    "never": ("从未使用", "never"),
    "request_revoke": ("申请停用", "Ask to revoke"),
    "reason": ("原因", "Reason"),
    "revoke_explained": (
        "停用收银台由所在城区审核办理（规则 U1）。申请会记入审计日志，"
        "城区工作人员处理后该收银台立即失效。",
        "Revoking a till is the district's decision (rule U1). Your request goes into the "
        "audit log; once the district revokes it, the till is refused at once.",
    ),
    "revoke_requested": (
        "已提交停用申请：{label}。",
        "Your request to revoke {label} was recorded.",
    ),
    "read_only": ("本页只读。", "This page is read only."),
    "settings": ("设置", "Settings"),
    "on": ("开启", "On"),
    "off": ("关闭", "Off"),
    "receipts_per_till": ("小票号按收银台编号", "Receipts numbered per till"),
    "receipts_per_till_help": (
        "开启：每台收银台各自编号，同一天不同收银台可以使用相同的小票号。关闭：全店同一天的"
        "小票号不能重复（规则 U4）。只影响此后的账单。",
        "On: each till numbers its own receipts, so two tills may use the same number on one "
        "day. Off: a receipt number is used once a day in the whole shop (rule U4). Applies to "
        "bills made from now on.",
    ),
    "refund_needs_manager": ("退款需经理授权", "Refunds need a manager"),
    "refund_needs_manager_help": (
        "开启：收银台每笔退款都须本店经理在收银台输入账号和密码授权，授权只对这一笔退款有效。",
        "On: every refund at a till needs one of this shop's managers to sign in at the till; "
        "the approval is good for that one refund only.",
    ),
    "settings_when": (
        "收银台在下次登录时取得新设置（最长 15 分钟），服务器立即按新设置执行。",
        "A till picks the change up when it next signs in (within 15 minutes); the server "
        "applies it at once.",
    ),
    "settings_reason": (
        "更改原因（记入审计日志）",
        "Reason for the change (kept in the audit log)",
    ),
    "save_settings": ("保存设置", "Save settings"),
    "settings_saved": (
        "设置已保存，原因已记入审计日志。",
        "Saved; the reason is in the audit log.",
    ),
    # ops
    "ranking": ("各区排名（S3）", "District ranking (S3)"),
    "rank": ("名次", "Rank"),
    "rank_n": ("第 {n} 名", "No. {n}"),
    "ranking_title": ("{month} 各区累计核销率", "Redemption rate to date, {month}"),
    "activity_title": (
        "{month} 每日发放与核销（张）",
        "Vouchers issued and redeemed per day, {month}",
    ),
    "district": ("城区", "District"),
    "claims_n": ("领取笔数", "Claims"),
    "issued": ("发放张数", "Issued"),
    "redeemed": ("核销张数", "Redeemed"),
    "value_redeemed": ("核销金额", "Value redeemed"),
    "rate": ("累计核销率", "Redemption rate to date"),
    "activity": ("每日领取与核销", "Claims and redemptions per day"),
    "all_districts": ("全部城区", "All districts"),
    "campaign": ("活动", "Campaign"),
    "batches": ("结算批次", "Settlement batches"),
    "chart_alt": ("各区累计核销率柱状图", "Bar chart of each district's redemption rate"),
    "activity_alt": (
        "每日发放与核销张数柱状图",
        "Bar chart of vouchers issued and redeemed per day",
    ),
    "read_everything": (
        "审计员：可查看全部数据，不能修改。",
        "Auditor: reads everything, changes nothing.",
    ),
    "own_district": ("仅显示本区：{d}", "Your district only: {d}"),
    # errors
    "not_found": ("页面不存在。", "There is no such page."),
    "forbidden": ("您无权查看此页面。", "You may not see this page."),
    "form_expired": (
        "表单已过期或来源不明，请返回后重试。",
        "The form expired or came from elsewhere; go back and try again.",
    ),
    "error": ("出错了", "Something went wrong"),
    "back": ("返回", "Back"),
    "yuan": ("{v} 元", "¥{v}"),
}

_WORDS |= ticket_words.WORDS  # issue 13: the house tickets' page (/ops/tickets)

# plain words for refusals, by error code (rules E1-E4, A1-A3, X1, issue 9 throttles)
_REFUSALS: dict[str, tuple[str, str]] = {
    "certificate_not_yours": (
        "没有找到登记在您名下的这本不动产权证，请核对证号。",
        "No certificate with this number is registered to you; check the number.",
    ),
    "certificate_not_eligible": (
        "这本不动产权证不在本次活动范围内（须为活动城区的新建商品住房，且在活动期间发证）。",
        "This certificate is not part of the programme (a new home in its districts, "
        "issued within its dates).",
    ),
    "certificate_already_claimed": (
        "这本证的消费券已经领取过了，每本证只能领取一次。",
        "The vouchers of this certificate were already claimed; each certificate claims once.",
    ),
    "no_vouchers_due": (
        "按购房金额计算，这本证没有可领取的消费券。",
        "By the price of the home, this certificate is due no vouchers.",
    ),
    "campaign_not_started": ("活动尚未开始领取。", "Claiming has not started yet."),
    "campaign_ended": ("活动领取已结束。", "Claiming has ended."),
    "participation_revoked": (
        "您的参与资格已被收回，不能领取或使用消费券。",
        "Your participation was revoked: you cannot claim or use vouchers.",
    ),
    "too_many_attempts": (
        "尝试次数过多，请稍后再试。",
        "Too many attempts; please try again later.",
    ),
    "rate_limited": ("操作太频繁，请稍后再试。", "Too often; please wait a moment."),
    "invalid_id_number": ("身份证号格式不正确。", "That is not a valid ID number."),
    "unauthenticated": ("请重新登录。", "Please sign in again."),
    "sign_in_not_started_here": (
        "这次登录不是从本浏览器的登录页发起的，或已过期、已使用。请回到登录页重新开始。",
        "This sign-in was not started from this browser's sign-in page, or it expired or was "
        "already used. Go back to the sign-in page and start again.",
    ),
    "invalid_request": ("输入内容不正确。", "The input is not valid."),
    "database_unavailable": (
        "系统暂时无法访问，请稍后再试。",
        "The service is briefly unavailable; try again shortly.",
    ),
    "account_disabled": ("该账号已被停用。", "This account is disabled."),
    "merchant_suspended": ("该商户已被暂停。", "This merchant is suspended."),
}


class Words:
    """The words of one language, for templates: ``T.key`` or ``T.key.format(...)``."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        index = LANGS.index(lang)
        self._words = {k: v[index] for k, v in _WORDS.items()}
        self._refusals = {k: v[index] for k, v in _REFUSALS.items()}

    def __getattr__(self, key: str) -> str:
        try:
            return self._words[key]
        except KeyError:
            raise AttributeError(key) from None

    def word(self, key: str) -> str:
        """A word chosen at run time (a status), or the key itself if there is none."""
        return self._words.get(key, key)

    def refusal(self, code: str, fallback: str) -> str:
        return self._refusals.get(code, fallback)

    def percent(self, bp: int) -> str:
        """A rate in basis points as a percentage (900 -> 9%, 250 -> 2.5%), no float."""
        whole, part = divmod(bp, 100)
        return f"{whole}.{part:02d}".rstrip("0").rstrip(".") + "%"

    def money(self, fen: int) -> str:
        sign = "-" if fen < 0 else ""
        whole, cents = divmod(abs(fen), 100)
        return self._words["yuan"].format(v=f"{sign}{whole:,}.{cents:02d}")


WORDS = {lang: Words(lang) for lang in LANGS}


def language(request: web.Request) -> str:
    """?lang= first (the switch), then the cookie it set, then Accept-Language; else Chinese."""
    asked = request.query.get("lang") or request.cookies.get(LANG_COOKIE, "")
    if asked in LANGS:
        return asked
    for part in request.headers.get("Accept-Language", "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh"
        if tag.startswith("en"):
            return "en"
    return "zh"
