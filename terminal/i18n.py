"""The cashier's words: Chinese by default, English by setting. Every error code the server
can send (``shared/errors.py`` and the HTTP edge) has plain words in both languages."""

from __future__ import annotations

from client.http import ApiError, BadAnswer, OutcomeUnknown, Unreachable
from shared.errors import VoucherError
from terminal.config import Lang

# key -> (中文, English)
TEXTS: dict[str, tuple[str, str]] = {
    "app.title": ("聊城消费券收银台", "Liaocheng voucher till"),
    # header
    "status.online": ("● 在线", "● online"),
    "status.offline": ("○ 离线", "○ offline"),
    "status.checking": ("… 连接中", "… connecting"),
    "status.unpaired": ("未配对", "not paired"),
    "terminal.name": ("收银台 {id}", "Till {id}"),
    # footer keys (Binding ids)
    "key.checkout": ("收款", "Pay"),
    "key.refund": ("退款", "Refund"),
    "key.day": ("日报", "Day"),
    "key.settings": ("设置", "Setup"),
    "key.quit": ("退出", "Quit"),
    "key.confirm": ("确认", "OK"),
    "key.new": ("新单", "New"),
    "key.check": ("查结果", "Check"),
    "key.stop": ("停止等待", "Stop"),
    "key.fewer": ("少用", "Fewer"),
    "key.more": ("多用", "More"),
    "key.save": ("保存", "Save"),
    "key.close": ("关闭", "Close"),
    "key.find": ("查找", "Find"),
    "key.load": ("查询", "Load"),
    "key.export": ("导出", "Export"),
    "key.pair": ("配对", "Pair"),
    "key.lang": ("English", "中文"),
    "key.receipt": ("打印", "Print"),
    "key.print": ("打印", "Print"),
    "key.reprint": ("重印", "Reprint"),
    "key.shift": ("交班", "Shift"),
    "key.open_shift": ("开班", "Open"),
    "key.close_shift": ("交班", "Close"),
    "key.printer": ("存打印机", "Printer"),
    # a developer's sales office (issue 13, rules T4-T8)
    "key.sales": ("房票", "Ticket"),
    "sales.contract": ("网签合同号", "Contract no."),
    "sales.contract.placeholder": ("网签备案的购房合同编号", "the filed (网签) contract number"),
    "sales.unit": ("房源", "Unit"),
    "sales.unit.prompt": ("选择房源库中的房源", "choose a unit of the pool"),
    "sales.price": ("合同总价(元)", "Price (元)"),
    "sales.signed": ("签约日期", "Signed on"),
    "sales.relation": ("购房人", "Buyer"),
    "sales.buyer_id": ("购房人证件号", "Buyer's ID no."),
    "sales.buyer_id.placeholder": (
        "购房人不是持票人本人时填写",
        "when the buyer is not the holder",
    ),
    "sales.proof": ("关系证明", "Proof"),
    "sales.proof.placeholder": (
        "结婚证、户口簿等的编号",
        "marriage certificate, household register",
    ),
    "sales.amount": ("房票金额(元)", "Ticket (元)"),
    "sales.amount.placeholder": ("空 = 本合同可用的最高金额", "empty = the most allowed"),
    "sales.scan.placeholder": (
        "扫描持票人钱包里的码（或粘贴）",
        "scan the code in the holder's wallet (or paste)",
    ),
    "relation.holder": ("持票人本人", "the holder"),
    "relation.spouse": ("配偶", "spouse"),
    "relation.parent": ("父母", "parent"),
    "relation.child": ("子女", "child"),
    "relation.household_member": ("家庭成员", "household member"),
    "sales.quote.title": ("房票", "House ticket"),
    "sales.quote.holder": (
        "持票人 {masked} · 房票 {number} · 有效期至 {deadline}",
        "Holder {masked} · ticket {number} · valid to {deadline}",
    ),
    "sales.quote.range": (
        "余额 {balance} 元 · 本合同可用 {low} 至 {high} 元",
        "Balance {balance} 元 · this contract may use {low} to {high} 元",
    ),
    "sales.quote.still": (
        "累计使用还差 {v} 元达到票面金额的 90%（之后可申请兑付结余）",
        "{v} 元 more to reach 90% of the face value (then cash-out)",
    ),
    "sales.quote.subsidy": (
        "签约在核发后第 {m} 个月：购房补贴 {rate}，{v} 元",
        "Signed in month {m} after issue: subsidy {rate}, {v} 元",
    ),
    "sales.quote.reward": ("政策性奖励 {v} 元（{area} ㎡）", "reward {v} 元 ({area} m²)"),
    "sales.quote.pays": (
        "房票支付 {amount} 元 · 购房人还需支付 {rest} 元",
        "Ticket pays {amount} 元 · the buyer still pays {rest} 元",
    ),
    "sales.quote.pending": (
        "房票支付：待确认 · 购房人还需支付：待确认",
        "Ticket pays: unconfirmed · the buyer still pays: unconfirmed",
    ),
    "sales.hint.start": (
        "填写网签合同号、房源、总价和购房人，然后扫持票人的码。",
        "Enter the contract, unit, price and buyer, then scan the holder's code.",
    ),
    "sales.scan.held": (
        "已读取持票人的码。请把合同信息填写完整，按 Enter。",
        "Holder's code read. Complete the contract, then Enter.",
    ),
    "sales.hint.confirm": (
        "核对无误按 F9 确认使用房票；改金额请修改房票金额后按 Enter 重新计算。",
        "If this is right, F9 uses the ticket; to change the amount, edit it and press Enter.",
    ),
    "sales.hint.requote": (
        "合同信息已修改：按 Enter 重新计算（无需重新扫码）。",
        "The contract changed: Enter quotes it again (no new scan needed).",
    ),
    "sales.hint.using": (
        "正在使用房票，请稍候…（最多 {s} 秒；Esc 停止等待）",
        "Using the ticket, please wait… (at most {s} s; Esc stops waiting)",
    ),
    "sales.hint.checking": (
        "？仍在向服务器查询结果…（第 {n} 次，最多 {s} 秒）请勿重新扫码。",
        "? Still asking the server for the outcome… (try {n}, at most {s} s). Do not rescan.",
    ),
    "sales.busy": ("正在办理当前合同，请稍候。", "This contract is being processed; wait."),
    "key.tickets": ("选票", "Tickets"),
    "key.choose": ("确定", "Use these"),
    "tickets.title": ("持票人的房票", "The holder's tickets"),
    "tickets.line": (
        "{number} · 余额 {balance} 元 · 有效期至 {deadline}",
        "{number} · balance {balance} 元 · valid to {deadline}",
    ),
    "tickets.hint": (
        "空格选中或取消（可选多张合并用于本合同），Enter 重新计算，Esc 不变。",
        "Space ticks or unticks (several combine on this contract); Enter quotes; Esc keeps.",
    ),
    "tickets.none": ("请至少选一张房票（空格选中）。", "Tick at least one ticket (Space)."),
    "sales.quote.holder.several": (
        "持票人 {masked} · {n} 张合并 · 可用 {low} 至 {high} 元",
        "Holder {masked} · {n} tickets · this contract may use {low} to {high} 元",
    ),
    "sales.quote.draw": (
        "  {number} · 余额 {balance} 元 → 本次支付 {amount} 元",
        "  {number} · balance {balance} 元 → pays {amount} 元",
    ),
    "sales.quote.unconfirmed": ("待确认", "unconfirmed"),
    "sales.amount.split": (
        "所选房票合计最多可用 {high} 元，不够 {want} 元：请多选房票或减少金额。",
        "The chosen tickets allow at most {high} 元, not {want} 元: tick more or ask less.",
    ),
    "sales.amount.fewer": (
        "{want} 元用不到房票 {number}（每张至少 {low} 元）：请取消选中它。",
        "{want} 元 leaves ticket {number} below its least ({low} 元): untick it.",
    ),
    "sales.receipt.hint": ("F7 查看或重印凭证。", "F7 shows or reprints the receipt."),
    "sales.result.ok": (
        "✔ 已使用房票 {amount} 元（补贴 {subsidy} 元，奖励 {reward} 元），"
        "购房人还需支付 {rest} 元；房票余额 {balance} 元。",
        "✔ Ticket used: {amount} 元 (subsidy {subsidy} 元, reward {reward} 元); "
        "the buyer still pays {rest} 元; balance {balance} 元.",
    ),
    "sales.result.unknown": (
        "？结果未知：请勿重新扫码，按 F8 查询结果。",
        "? Outcome unknown: do not rescan; F8 asks the server.",
    ),
    "sales.result.still_unknown": (
        "？结果仍未知：第 {n} 次查询（{at}）服务器仍无应答。请勿重新扫码；按 F8 再查。",
        "? Still unknown: check {n} ({at}) got no answer. Do not rescan; F8 asks again.",
    ),
    "sales.result.not_used": (
        "✘ 未使用房票：服务器没有这次使用，可重新确认。",
        "✘ Not used: the server has no such use; you may confirm again.",
    ),
    "sales.result.offline": (
        "✘ 服务器离线，未使用房票。请检查网络后重试。",
        "✘ Server offline; the ticket was not used. Check the network and retry.",
    ),
    "sales.result.refused": ("✘ 未使用房票：{reason}", "✘ Not used: {reason}"),
    "sales.pool.empty": (
        "房源库中没有可售房源，请联系住建部门。",
        "The listing pool holds no unit for sale; call the housing bureau.",
    ),
    "sales.not_here": (
        "售楼处终端只办理房票，不办理消费券退款和日报。",
        "A sales office's till takes house tickets only: no voucher refunds or day list.",
    ),
    "input.contract": ("请输入网签合同号（1-64 个字符）。", "Enter the contract number (1-64)."),
    "input.unit": ("请选择房源（Enter 打开列表）。", "Choose a unit (Enter opens the list)."),
    "input.price": (
        "合同总价：请输入元，最多两位小数。",
        "The price: 元 with at most two decimals.",
    ),
    "input.signed": ("签约日期格式：YYYY-MM-DD。", "Signing date: YYYY-MM-DD."),
    "input.buyer-id": (
        "购房人证件号不对：18 位身份证号（购房人不是持票人本人时必填）。",
        "The buyer's ID number is not valid: 18 characters (needed unless the holder buys).",
    ),
    "input.amount": (
        "房票金额：请输入元，最多两位小数；空 = 最高金额。",
        "Ticket amount: 元 with at most two decimals; empty = the most allowed.",
    ),
    "input.scan.ticket": ("请先扫描持票人的码。", "Scan the holder's code first."),
    # checkout
    "checkout.bill": ("账单金额(元)", "Bill (元)"),
    "checkout.bill.placeholder": ("例如 450.00", "e.g. 450.00"),
    "checkout.receipt": ("小票号", "Receipt no."),
    "checkout.receipt.placeholder": ("收银小票上的编号", "number on the till receipt"),
    "checkout.scan": ("扫码", "Scan"),
    "checkout.scan.placeholder": (
        "扫描顾客的消费券码（或粘贴）",
        "scan the customer's code (or paste)",
    ),
    "quote.title": ("消费券", "Vouchers"),
    "quote.customer": ("顾客", "Customer"),
    "quote.held": ("持有可用券 {n} 张", "{n} vouchers held"),
    "quote.allowed": ("本单最多 {n} 张", "bill allows {n}"),
    "quote.count": ("使用张数", "Use"),
    "quote.each": ("张 × {v} 元", "× {v} 元"),
    "quote.covered": ("券抵扣(元)", "Covered (元)"),
    "quote.to_pay": ("还需支付(元)", "Still to pay (元)"),
    "hint.start": (
        "输入账单金额和小票号，然后扫顾客的消费券码。",
        "Enter the bill and receipt number, then scan the customer's code.",
    ),
    "scan.held.bill": (
        "已读取消费券码。请输入账单金额，按 Enter。",
        "Voucher code read. Enter the bill, then Enter.",
    ),
    "scan.held.receipt": (
        "已读取消费券码。请输入小票号，按 Enter。",
        "Voucher code read. Enter the receipt number, then Enter.",
    ),
    "scan.product": (
        "这是商品条码，不是消费券码。请扫描顾客手机上的消费券码。",
        "That is a product barcode, not a voucher code. Scan the code in the customer's app.",
    ),
    "scan.payment": (
        "这是微信/支付宝付款码，不是消费券码。请让顾客打开消费券码。",
        "That is a WeChat/Alipay payment code, not a voucher code. Ask for the voucher code.",
    ),
    "scan.old_voucher": (
        "这是旧版消费券码，已经失效。请顾客刷新消费券码后重新扫码。",
        "That is a voucher code of the old kind and has expired: ask the customer to refresh it.",
    ),
    "scan.text": (
        "扫到的内容不是消费券码。请扫描顾客手机上的消费券码。",
        "What was scanned is not a voucher code. Scan the code in the customer's app.",
    ),
    "hint.quoting": ("正在查询…", "Checking the code…"),
    "hint.confirm": (
        "按 Enter 或 F9 确认核销；按 - / + 调整张数。",
        "Enter or F9 redeems; - / + changes the count.",
    ),
    "hint.redeeming": (
        "正在核销，请稍候…（最多 {s} 秒；Esc 停止等待）",
        "Redeeming, please wait… (at most {s} s; Esc stops waiting)",
    ),
    # issue 14: the server shed this request (503 + Retry-After); the till sends the same
    # request (same key) again when the server said, and the cashier may stop waiting
    "hint.server_busy": (
        "服务器繁忙，{s} 秒后自动重试（同一笔交易，不会重复核销；Esc 停止等待）",
        "The server is busy: retrying automatically in {s} s (the same sale, never twice; "
        "Esc stops waiting)",
    ),
    "hint.database_wait": (
        "服务器数据库暂时不可用，{s} 秒后自动重试（同一笔交易，不会重复核销；Esc 停止等待）",
        "The server's database is away for a moment: retrying automatically in {s} s "
        "(the same sale, never twice; Esc stops waiting)",
    ),
    "title.server_busy": ("服务器繁忙", "Server busy"),
    "hint.checking": (
        "？仍在向服务器查询结果…（第 {n} 次，最多 {s} 秒）请勿收款、请勿重新扫码。",
        "? Still asking the server for the outcome… (try {n}, at most {s} s). "
        "Do not charge, do not rescan.",
    ),
    "result.still_unknown": (
        "？结果仍未知：第 {n} 次查询（{at}）服务器仍无应答。请勿重新扫码；按 F8 再查。",
        "? Still unknown: check {n} ({at}) got no answer. Do not rescan; F8 asks again.",
    ),
    "quote.covered.pending": ("券抵扣：待确认", "Covered: unconfirmed"),
    "quote.to_pay.pending": ("还需支付：待确认", "To pay: unconfirmed"),
    "result.ok": (
        "✔ 核销成功：{n} 张券抵扣 {v} 元，还需支付 {r} 元",
        "✔ Redeemed: {n} vouchers cover {v} 元; {r} 元 still to pay",
    ),
    "result.recovered": (
        "（应答曾丢失，已向服务器核实）",
        "(answer was lost; confirmed with server)",
    ),
    "result.unknown": (
        "？结果未知：请勿重新扫码，按 F8 查询结果。",
        "? Outcome unknown: do not rescan; F8 asks the server.",
    ),
    "result.not_redeemed": (
        "✘ 未核销：没有使用任何券，可重新确认。",
        "✘ Not redeemed: no voucher was used; you may confirm again.",
    ),
    "result.offline": (
        "✘ 服务器离线，未核销。请检查网络后重试。",
        "✘ Server offline; nothing was redeemed. Check the network and retry.",
    ),
    "result.refused": ("✘ 未核销：{reason}", "✘ Not redeemed: {reason}"),
    "input.bill": (
        "金额格式不对：请输入元，最多两位小数，例如 450 或 450.50。",
        "The bill must be in 元 with at most two decimals, e.g. 450 or 450.50.",
    ),
    "input.receipt": (
        "请输入小票号（1-64 个字符）。",
        "Enter the receipt number (1-64 characters).",
    ),
    "input.scan": ("请先扫描顾客的消费券码。", "Scan the customer's code first."),
    "input.count": ("张数必须在 1 到 {n} 之间。", "The count must be from 1 to {n}."),
    "input.none_usable": (
        "本单不能用券（每满 200 元可用 1 张）。",
        "No voucher can be used on this bill (one per full 200 元).",
    ),
    "input.server": (
        "服务器地址要以 http:// 或 https:// 开头。",
        "The server URL must start with http:// or https://.",
    ),
    "input.terminal-id": ("终端编号是正整数。", "The terminal id is a positive whole number."),
    "input.secret": ("请输入终端密钥。", "Enter the terminal's secret."),
    "input.unpaired": ("本终端尚未配对：请按 F5 配对。", "This till is not paired: press F5."),
    "input.date": ("日期格式：YYYY-MM-DD。", "Date format: YYYY-MM-DD."),
    "input.id": ("核销单号是数字。", "The redemption id is a number."),
    "input.find": ("请输入小票号或核销单号。", "Enter a receipt number or redemption id."),
    # titles of notifications
    "title.refused": ("未能办理", "Refused"),
    "title.error": ("出错了", "Error"),
    "title.offline": ("离线", "Offline"),
    "title.unknown": ("结果未知", "Outcome unknown"),
    "title.ok": ("成功", "Done"),
    "title.refresh": ("请顾客刷新消费券码", "Ask for a fresh code"),
    "title.input": ("请检查输入", "Check the input"),
    "title.not_voucher": ("不是消费券码", "Not a voucher code"),
    "error.ui": (
        "出了点意外，已记录。请重试；如仍不行请重启收银台。",
        "Something unexpected happened and was logged. Try again; restart the till if it persists.",
    ),
    "title.busy": ("请先完成当前顾客", "Finish this customer first"),
    # receipt
    "receipt.title": ("消费券核销凭证", "VOUCHER REDEMPTION RECEIPT"),
    "receipt.merchant": ("商户", "Merchant"),
    "receipt.terminal": ("终端", "Till"),
    "receipt.time": ("时间", "Time"),
    "receipt.receipt_no": ("小票号", "Receipt no."),
    "receipt.customer": ("顾客", "Customer"),
    "receipt.bill": ("账单金额", "Bill"),
    "receipt.vouchers": ("使用消费券", "Vouchers used"),
    "receipt.vouchers.value": ("{n} 张 × {f} 元", "{n} × {f} 元"),
    "receipt.value": ("券抵扣", "Covered"),
    "receipt.to_pay": ("还需支付", "Still to pay"),
    "receipt.redemption_id": ("核销单号", "Redemption id"),
    "receipt.reprint": ("（重印）", "(REPRINT)"),
    "receipt.vouchers_left": ("剩余消费券", "Vouchers left"),
    "receipt.refund": ("退款", "Refund"),
    "receipt.refund.bill": ("退款后账单", "Bill after"),
    "receipt.refund.returned": ("退回消费券", "Returned"),
    "receipt.refund.count": ("{n} 张", "{n} vouchers"),
    "receipt.footer": ("消费券不找零，不兑现。", "No change, no cash for vouchers."),
    "receipt.saved": ("凭证已保存：{path}", "Receipt saved: {path}"),
    "receipt.hint": (
        "F7 打印 · F8 存为文件 · Enter 关闭",
        "F7 print · F8 save as text · Enter close",
    ),
    "receipt.printing": ("正在打印…", "Printing…"),
    "receipt.printed": ("已打印。", "Printed."),
    "receipt.print_failed": (
        "打印失败：{reason}。检查打印机后按 F7 重试，或按 F8 存为文件。",
        "Printing failed: {reason}. Check the printer, F7 retries, F8 saves as text.",
    ),
    # the receipt of a house ticket's use (issue 13, rules T5-T8)
    "ticket_receipt.title": ("房票使用凭证", "HOUSE TICKET USE RECEIPT"),
    "ticket_receipt.programme": ("项目", "Programme"),
    "ticket_receipt.developer": ("开发商", "Developer"),
    "ticket_receipt.office": ("售楼处", "Office"),
    "ticket_receipt.contract": ("网签合同号", "Contract"),
    "ticket_receipt.unit": ("房源", "Unit"),
    "ticket_receipt.area": ("面积", "Area"),
    "ticket_receipt.price": ("合同总价", "Price"),
    "ticket_receipt.holder": ("持票人", "Holder"),
    "ticket_receipt.buyer": ("购房人", "Buyer"),
    "ticket_receipt.ticket": ("房票", "Ticket"),
    "ticket_receipt.drawn": ("  本次使用", "  Drawn"),
    "ticket_receipt.left": ("  剩余金额", "  Left"),
    "ticket_receipt.total": ("房票合计", "Tickets"),
    "ticket_receipt.subsidy": ("购房补贴", "Subsidy"),
    "ticket_receipt.reward": ("政策奖励", "Reward"),
    "ticket_receipt.pays": ("购房人还需付", "Buyer pays"),
    "ticket_receipt.use_id": ("使用单号", "Use id"),
    "ticket_receipt.footer": ("房票专款购房，不得套现。", "House tickets buy homes, never cash."),
    # refund
    "refund.title": ("退款", "Refund"),
    "refund.receipt": ("小票号", "Receipt no."),
    "refund.id": ("核销单号", "Redemption id"),
    "refund.amount": ("退款金额(元)", "Refund (元)"),
    "refund.amount.placeholder": ("退给顾客的金额；F8 = 全额", "amount refunded; F8 = all"),
    "refund.hint": (
        "输入小票号或核销单号后按 Enter 查找；再输入退款金额，按 Enter 核对。",
        "Enter a receipt no. or id to find it; type the amount refunded, Enter checks it.",
    ),
    "refund.found": (
        "单号 {id} · 小票 {receipt} · 账单 {bill} 元 · 用券 {n} 张 · 未退 {live} 张 · {status}",
        "id {id} · receipt {receipt} · bill {bill} 元 · {n} vouchers · {live} live · {status}",
    ),
    "refund.preview.title": ("退款核对", "Check the refund"),
    "refund.preview.full": ("全额退款", "Full refund"),
    "refund.preview.unknown": ("退款核对 · 结果未知", "Check the refund · outcome unknown"),
    "refund.preview": (
        "退款 {refund} 元 · 退款后账单 {remaining} 元（原 {bill} 元）\n"
        "消费券：退回顾客 {returned} 张（{rvalue} 元）· 保留 {kept} 张\n"
        "应退现金 {cash} 元（已付现金 {paid} 元，退款后应付 {owed} 元）",
        "Refund {refund} 元 · bill after {remaining} 元 (was {bill} 元)\n"
        "Vouchers: {returned} back to the customer ({rvalue} 元) · {kept} kept\n"
        "Cash to hand back {cash} 元 (paid {paid} 元, owes {owed} 元 after)",
    ),
    "refund.press_f9": (
        "核对无误请按 F9 确认退款；要改金额，直接修改。",
        "If this is right, F9 refunds; to change it, edit the amount.",
    ),
    "refund.press_f9.manager": (
        "核对无误请按 F9，由经理授权后退款；要改金额，直接修改。",
        "If this is right, F9 asks a manager to approve; to change it, edit the amount.",
    ),
    "refund.ok": (
        "✔ 已退款 {refund} 元：{n} 张券退回顾客，保留 {kept} 张；请退现金 {cash} 元。",
        "✔ Refunded {refund} 元: {n} vouchers back, {kept} kept; hand back {cash} 元 cash.",
    ),
    "refund.none": (
        "✔ 已退款 {refund} 元：没有券退回（保留 {kept} 张）；请退现金 {cash} 元。",
        "✔ Refunded {refund} 元: no voucher back ({kept} kept); hand back {cash} 元 cash.",
    ),
    "refund.returned": ("退回的券：{ids}", "Vouchers returned: {ids}"),
    "refund.unknown": (
        "？结果未知：服务器没有应答。先不要退现金；按 F9 以同一请求再试。",
        "? Outcome unknown: no answer. Hand back no cash yet; F9 sends the same request again.",
    ),
    "refund.working": (
        "正在退款，请稍候…（最多 {s} 秒；Esc 停止等待）",
        "Refunding, please wait… (at most {s} s; Esc stops waiting)",
    ),
    "input.refund": (
        "退款金额：请输入元，最多两位小数，例如 450；全额退款按 F8。",
        "Refund: 元 with at most two decimals, e.g. 450; F8 refunds all.",
    ),
    "input.refund.empty": (
        "请输入退款金额（全额退款按 F8）。",
        "Type the amount refunded (F8 refunds all).",
    ),
    "input.campaign": (
        "暂时读不到活动规则，无法核对退款；请稍后再试。",
        "The campaign's rules cannot be read now, so the refund cannot be checked; retry.",
    ),
    # a manager's approval (issue 11 items 5, 8)
    "manager.title": ("经理授权", "Manager approval"),
    "manager.refund": (
        "退款 {refund} 元需要本店经理授权。",
        "Refunding {refund} 元 needs a manager of this shop.",
    ),
    "manager.pair": (
        "更改服务器或重新配对需要本店经理授权。",
        "Changing the server or re-pairing needs a manager of this shop.",
    ),
    "manager.username": ("经理账号", "Manager"),
    "manager.password": ("密码", "Password"),
    "manager.hint": ("Enter/F9 确认；Esc 取消。", "Enter/F9 approves; Esc cancels."),
    "manager.checking": ("正在核对…", "Checking…"),
    "manager.wrong": ("账号或密码不对。", "Wrong username or password."),
    "manager.not_manager": (
        "这个账号不是本店经理，不能授权。",
        "This account is not a manager of this shop.",
    ),
    "manager.no_session": (
        "连不上当前服务器，无法核对经理账号；什么都没有改。",
        "The current server cannot be reached to check the manager; nothing changed.",
    ),
    "manager.approved": ("经理 {name} 已授权。", "Approved by manager {name}."),
    "manager.cancelled": ("已取消，没有办理。", "Cancelled; nothing was done."),
    "input.manager": (
        "请输入经理账号和密码。",
        "Enter the manager's username and password.",
    ),
    "key.full": ("全额", "All"),
    "key.approve": ("授权", "Approve"),
    "key.cancel": ("取消", "Cancel"),
    "status.redeemed": ("已核销", "redeemed"),
    "status.partially_refunded": ("部分退款", "partly refunded"),
    "status.refunded": ("已全额退款", "refunded"),
    "status.settled": ("已结算", "settled"),
    # day list
    "day.title": ("日报", "Day list"),
    "day.date": ("日期", "Date"),
    "day.date.placeholder": ("YYYY-MM-DD，空 = 今天", "YYYY-MM-DD, empty = today"),
    "day.export_to": ("导出到", "Export to"),
    "day.col.time": ("时间", "Time"),
    "day.col.receipt": ("小票号", "Receipt"),
    "day.col.vouchers": ("券", "Vouch."),
    "day.col.value": ("券金额", "Value"),
    "day.col.refunded": ("已退", "Ret."),
    "day.col.bill": ("账单", "Bill"),
    "day.col.terminal": ("收银台", "Till"),
    "day.col.cash": ("现金", "Cash"),
    "day.totals": (
        "{date} 合计：{bills} 单 · 用券 {vouchers} 张 · {value} 元 · 收现 {cash} 元\n"
        "退回 {returned} 张 · {rvalue} 元 · 净额 {net} 元 · 退现 {back} 元",
        "{date} totals: {bills} bills · {vouchers} vouchers · {value} 元 · cash {cash} 元\n"
        "returned {returned} · {rvalue} 元 · net {net} 元 · cash back {back} 元",
    ),
    "day.till": (
        "  {name}：{bills} 单 · 券 {vouchers} 张 {value} 元 · 收现 {cash} 元 · 退回 {returned} 张"
        " · 退现 {back} 元",
        "  {name}: {bills} bills · {vouchers} vouchers {value} 元 · cash {cash} 元 · "
        "returned {returned} · cash back {back} 元",
    ),
    "day.empty": ("{date} 没有核销记录。", "No redemptions on {date}."),
    "day.exported": ("已导出：{path}", "Exported: {path}"),
    "day.loading": ("正在查询…", "Loading…"),
    "day.select": (
        "请先用上下键选中一行，再按 F8 重印。",
        "Select a row with the arrow keys, then F8 reprints it.",
    ),
    # the shift (交班)
    "shift.title": ("交班汇总", "SHIFT SUMMARY"),
    "shift.opened": ("开班", "Opened"),
    "shift.until": ("截至", "Until"),
    "shift.closed": ("交班", "Closed"),
    "shift.bills": ("核销单数", "Bills"),
    "shift.count": ("{n} 单", "{n}"),
    "shift.vouchers": ("用券", "Vouchers"),
    "shift.value": ("券金额", "Voucher value"),
    "shift.bill": ("账单合计", "Bills total"),
    "shift.cash": ("收现", "Cash collected"),
    "shift.cash_back": ("退现", "Cash back"),
    "shift.refunds": ("退款", "Refunds"),
    "shift.refund_count": ("{n} 笔", "{n}"),
    "shift.returned": ("退回券", "Returned"),
    "shift.net": ("净券金额", "Net value"),
    "shift.none": (
        "本收银台没有开班。按 F9 开班：从现在起的核销和退款计入本班。",
        "No shift is open at this till. F9 opens one: from now on, sales count to it.",
    ),
    "shift.hint.open": (
        "F9 交班（结束本班）；F7 打印；Esc 关闭。",
        "F9 closes the shift; F7 prints; Esc closes this window.",
    ),
    "shift.hint.closed": (
        "已交班。F7 打印；F9 开新班；Esc 关闭。",
        "Shift closed. F7 prints; F9 opens a new one; Esc closes this window.",
    ),
    "shift.opened_now": ("已开班：{at}", "Shift opened: {at}"),
    "shift.closed_now": ("已交班：{at}", "Shift closed: {at}"),
    "shift.loading": ("正在汇总…", "Adding up…"),
    # settings / pairing
    "settings.title": ("设置与配对", "Settings and pairing"),
    "settings.server": ("服务器地址", "Server URL"),
    "settings.terminal_id": ("终端编号", "Terminal id"),
    "settings.secret": ("终端密钥", "Secret"),
    "settings.lang": ("语言", "Language"),
    "settings.hint": (
        "填写运营方发放的终端凭证，按 F9 配对。配对信息只保存在本机（仅本人可读）。",
        "Enter the credential the operator issued, F9 pairs. Kept on this machine, owner-only.",
    ),
    "settings.paired": ("配对成功：{merchant}", "Paired: {merchant}"),
    "settings.saved": ("已保存：{path}", "Saved: {path}"),
    "settings.current": ("当前：终端 {id} @ {url}", "Now: till {id} @ {url}"),
    "settings.pairing": ("正在配对…", "Pairing…"),
    "settings.printer": ("打印机", "Printer"),
    "settings.printer.placeholder": (
        "none / network:IP:9100 / usb:0x0416:0x5011 / device:/dev/usb/lp0",
        "none / network:IP:9100 / usb:0x0416:0x5011 / device:/dev/usb/lp0",
    ),
    "settings.paper": ("纸宽(mm)", "Paper (mm)"),
    "settings.printer.saved": (
        "打印机设置已保存：{spec}，{mm} mm",
        "Printer saved: {spec}, {mm} mm",
    ),
    "input.printer": (
        "打印机设置不对：{reason}",
        "The printer setting is not valid: {reason}",
    ),
    "settings.lang.now": ("中文（F6 切换到 English）", "English (F6 switches to 中文)"),
}

# error code -> (中文, English): plain words for the cashier (rule ids in shared/errors.py)
ERRORS: dict[str, tuple[str, str]] = {
    # the citizen's QR code (rule U5)
    "token_expired": (
        "消费券码已过期，请顾客刷新消费券码后重新扫码。",
        "The code has expired: ask the customer to refresh it and scan again.",
    ),
    "token_replayed": (
        "消费券码已使用过，请顾客刷新消费券码后重新扫码。",
        "The code was already used: ask the customer to refresh it and scan again.",
    ),
    "sign_in_not_started_here": (
        "这次登录不是在本浏览器中发起的，请重新发起登录。",
        "This sign-in was not started in this browser: start it again.",
    ),
    "token_invalid": (
        "这不是有效的消费券码，请顾客在消费券应用中刷新后重新扫码。",
        "This is not a valid voucher code: ask the customer to refresh it.",
    ),
    # the bill (rules U3, U4)
    "bill_too_small": (
        "账单金额不足，每满 200 元才能用 1 张券。",
        "The bill is too small: one voucher per full 200 元.",
    ),
    "too_many_vouchers": (
        "张数超过本单上限（每满 200 元 1 张），请减少张数。",
        "Too many vouchers for this bill (one per full 200 元): use fewer.",
    ),
    "not_enough_vouchers": (
        "顾客没有足够的可用券。",
        "The customer does not hold enough valid vouchers.",
    ),
    "voucher_expired": ("顾客的券已过期，不能使用。", "The customer's vouchers have expired."),
    "wrong_district": (
        "这些券不能在本区商户使用。",
        "These vouchers cannot be used at a shop in this district.",
    ),
    "bill_already_redeemed": (  # rule U4: said at the quote, before the money is taken
        "这张小票号今天已用过，请核对小票号或换下一张。顾客的码仍有效，改好小票号后按回车。",
        "This receipt number was already used today: check it, or take the next receipt. "
        "The customer's code still holds: fix the number and press Enter.",
    ),
    "participation_revoked": (
        "该顾客的参与资格已被取消。",
        "This customer's participation was revoked.",
    ),
    # the shop and the till (rule U1)
    "merchant_not_permitted": (
        "本商户没有核销消费券的资格，请联系区运营方。",
        "This shop may not redeem vouchers; contact the district operator.",
    ),
    "merchant_suspended": (
        "本商户已被暂停，请联系区运营方。",
        "This shop is suspended; contact the district operator.",
    ),
    "terminal_disabled": (
        "本收银终端已停用，请联系运营方。",
        "This till is disabled; contact the operator.",
    ),
    # staff accounts and settlement (rules X1, X2, S1): the till never sees these
    "account_disabled": ("该账户已停用。", "This account is disabled."),
    "separation_of_duties": (
        "同一账户不能在同一结算批次中办理两个环节。",
        "One account may not take two steps of one settlement batch.",
    ),
    "own_account": (
        "不能修改自己的账户，请找另一位管理员。",
        "Ask another manager to change your own account.",
    ),
    "username_invalid": ("用户名格式不对。", "The username is not valid."),
    "username_taken": ("用户名已被使用。", "This username is taken."),
    "password_too_short": (
        "密码至少需要十二个字符。",
        "A password has at least twelve characters.",
    ),
    # refunds (rules F1-F3)
    "already_settled": (
        "这笔核销已结算给商户，券不能退回；请商户自行退款。",
        "Already settled to the shop: vouchers cannot return; the shop refunds the money.",
    ),
    "already_refunded": ("这笔核销已经全额退款。", "This redemption was already fully refunded."),
    "refund_invalid": (
        "退款金额不对：必须大于 0，且不超过当前账单金额。",
        "The refund is not valid: more than 0 and at most the current bill.",
    ),
    # requests
    "invalid_amount": (
        "金额不对：请输入元，最多两位小数。",
        "The amount is not valid: 元 with at most two decimals.",
    ),
    "invalid_request": ("请求内容不对，请检查输入。", "The request is not valid; check the input."),
    "invalid_date": (
        "日期不对：请输入2000年至2099年之间的日期。",
        "The date is not valid: give a date from 2000 to 2099.",
    ),
    "invalid_input": ("输入内容不对，请检查。", "The input is not valid; check it."),
    "idempotency_key_in_use": (
        "上一次请求仍在处理中，请稍候再查询。",
        "The previous attempt is still being processed; check again shortly.",
    ),
    "voucher_code_required": (
        "查询上一次请求时缺少顾客的消费券码，无法确认结果，请联系技术支持。",
        "The check on the previous attempt lacked the customer's code; call support.",
    ),
    "idempotency_key_reused": (
        "请求内容已改变，请重新确认。",
        "The request changed; confirm it again.",
    ),
    "unauthenticated": (
        "终端凭证无效，请在设置 (F5) 中重新配对。",
        "The till's credential was refused: pair again in Settings (F5).",
    ),
    "forbidden": ("本终端无权办理此业务。", "This till may not do that."),
    "manager_approval_required": (  # issue 11 item 5: the shop's setting, held by the server
        "本店退款需要经理授权：请按 F9 请经理输入账号和密码。",
        "This shop's refunds need a manager's approval: press F9 for the manager to sign in.",
    ),
    "approval_for_another_refund": (  # item 5: an approval names one refund
        "经理的授权只对原来那一笔退款有效：请按 F9 请经理为这笔退款授权。",
        "The manager approved another refund: press F9 for the manager to approve this one.",
    ),
    "not_found": ("找不到这笔核销。", "No such redemption at this shop."),
    "conflict": ("当前状态不允许此操作。", "The current state does not allow this."),
    "refused": ("活动规则不允许此操作。", "The campaign rules refuse this."),
    # not for the till, but the server may send them
    "invalid_id_number": ("身份证号码无效。", "The ID number is not valid."),
    "certificate_not_found": ("没有这本不动产权证。", "No such property certificate."),
    "campaign_not_found": ("没有这个活动。", "No such campaign."),
    "not_registered_owner": ("不是登记的产权人。", "Not a registered owner."),
    "certificate_not_yours": (
        "没有列您为产权人的这本证书。",
        "No certificate with this number lists you as an owner.",
    ),
    "rate_limited": (
        "请求过于频繁，请稍候再试。",
        "Too many requests; wait a moment and try again.",
    ),
    "certificate_already_claimed": (
        "这本证书的券已被领取。",
        "This certificate was already claimed.",
    ),
    "certificate_not_eligible": ("这本证书不符合活动条件。", "This certificate is not eligible."),
    "no_vouchers_due": ("按金额计算没有可领的券。", "The amount entitles to no voucher."),
    "campaign_not_started": ("活动尚未开始。", "The campaign has not started."),
    "campaign_ended": ("活动已结束。", "The campaign has ended."),
    "settlement_exists": ("本月结算批次已存在。", "This month's settlement batch already exists."),
    "settlement_state_invalid": (
        "结算批次不在此步骤所需的状态。",
        "The settlement batch is not in the state this step needs.",
    ),
    "month_not_over": ("本月尚未结束，不能结算。", "The month is not over yet."),
    "campaign_in_use": (
        "该活动已有领取记录，规则不能更改。",
        "This campaign has claims; its rules stay.",
    ),
    "too_many_attempts": (
        "失败次数过多，请稍候再试。",
        "Too many failed attempts; wait a few minutes and try again.",
    ),
    "config_error": (
        "服务器配置有误，请联系运营方。",
        "Server configuration error; call the operator.",
    ),
    "campaign_config_invalid": (
        "服务器活动配置有误，请联系运营方。",
        "Server campaign configuration error; call the operator.",
    ),
    "voucher_error": ("操作失败。", "The operation failed."),
    # house tickets at a sales office (rules T1-T13)
    "issuance_closed": ("本日期不核发房票。", "House tickets are not issued on this date."),
    "project_not_eligible": ("该项目不能核发房票。", "This project may not issue house tickets."),
    "ticket_expired": ("房票已过使用期限，不能使用。", "The house ticket has expired."),
    "ticket_reported_lost": (
        "房票已挂失，补办前不能使用。",
        "The house ticket was reported lost; it cannot be used until replaced.",
    ),
    "ticket_void": ("这张房票的编号已作废。", "This house ticket number is no longer valid."),
    "ticket_not_found": (
        "持票人名下没有这张房票（或没有本项目的房票）。",
        "The holder holds no such house ticket (or none of this programme).",
    ),
    "listing_not_eligible": (
        "该房源不能用房票购买，请核对房源库。",
        "This unit cannot be bought with a house ticket; check the listing pool.",
    ),
    "buyer_not_served": (
        "购房人不是持票人或可代付的家庭成员。",
        "The buyer is neither the holder nor a family member the ticket may pay for.",
    ),
    "ticket_balance_insufficient": (
        "使用金额超过房票余额。",
        "The amount is above the house ticket's balance.",
    ),
    "ticket_exceeds_price": (
        "房票金额加补贴或奖励超过合同总价。",
        "The ticket amount with its subsidy or reward is above the contract price.",
    ),
    "ticket_use_below_minimum": (
        "单次使用金额未达到房票面值规定比例。",
        "A single use must reach the required share of the ticket's face value.",
    ),
    "ticket_split_refused": (
        "这张房票不能按此方式分割或合并。",
        "The house ticket cannot be split or combined this way.",
    ),
    "ticket_transfer_refused": ("这张房票不能转让或继承。", "The house ticket cannot pass on."),
    "ticket_return_refused": (
        "这张房票现在不能退回或作废。",
        "The house ticket cannot be returned or voided now.",
    ),
    "contract_already_used": (
        "这份购房合同已经用过房票，同一合同只能使用一次。",
        "A house ticket was already used on this contract; a contract is paid once.",
    ),
    "contract_already_cancelled": (
        "这份购房合同的房票使用已撤销。",
        "This purchase contract's ticket use was already cancelled.",
    ),
    "cashout_not_due": (
        "房票结余暂不能兑付。",
        "The ticket's balance cannot be paid out yet.",
    ),
    "replacement_not_yet": (
        "遗失声明期尚未届满，暂不能补办。",
        "The lost ticket's notice is still running.",
    ),
    "working_calendar_missing": (
        "工作日日历未覆盖该日期，请联系运营方。",
        "The working-day calendar does not cover this date; call the operator.",
    ),
    # the HTTP edge
    "body_too_large": ("请求太大。", "The request is too large."),
    "method_not_allowed": ("服务器不支持此操作。", "The server does not allow this."),
    "unsupported_media_type": ("请求格式不对。", "The request format is wrong."),
    "bad_request": ("请求不对。", "Bad request."),
    "internal_error": (
        "服务器内部错误，请稍后再试。",
        "Server error; try again in a moment.",
    ),
    "service_unavailable": (
        "服务暂时不可用，请稍后再试。",
        "The service is unavailable for a moment; try again shortly.",
    ),
    "database_unavailable": (
        "服务器数据库暂时不可用，请稍后再试；同一笔交易重试不会重复核销。",
        "The server's database is unavailable for a moment; retrying the same sale is safe.",
    ),
    # issue 14: the server refused at once under overload; nothing was done
    "server_busy": (
        "服务器繁忙，本笔未办理，请稍后重试；同一笔交易重试不会重复核销。",
        "The server is busy and did nothing; try again in a moment, retrying the sale is safe.",
    ),
    "waiting_room": (
        "领券人数较多，正在排队，请按提示时间后再试。",
        "Many people are claiming now: you are in the waiting room; try again when told.",
    ),
    # the terminal's own
    "unreachable": (
        "连不上服务器，请检查网络。没有办理任何业务。",
        "Cannot reach the server; check the network. Nothing was done.",
    ),
    "outcome_unknown": (
        "服务器没有应答，结果未知。请勿重复收款，稍后查询结果。",
        "No answer from the server; the outcome is unknown. Do not charge twice; check later.",
    ),
    "not_redeemed": (
        "服务器没有这笔核销：没有使用任何券。",
        "The server has no such redemption: no voucher was used.",
    ),
    "bad_answer": ("服务器的应答无法读取。", "The server's answer cannot be read."),
    "not_used": (
        "服务器没有这次房票使用的记录：房票未使用。",
        "The server has no record of this ticket use: the ticket was not used.",
    ),
    "unexpected": ("发生意外错误，请重试。", "Something unexpected happened; try again."),
}

REFRESH_QR_CODES = frozenset({"token_expired", "token_replayed", "token_invalid"})
"""Rule U5: the cure is the same for all three: a fresh code from the citizen's app."""

DISTRICTS: dict[str, tuple[str, str]] = {  # rule C2, for when the server's names are unknown
    "dongchangfu": ("东昌府区", "Dongchangfu"),
    "jingkai": ("经开区", "Economic Development Zone"),
    "gaoxin": ("高新区", "High-tech Zone"),
    "dujia": ("度假区", "Resort Zone"),
}


def _pick(pair: tuple[str, str], lang: Lang) -> str:
    return pair[1] if lang == "en" else pair[0]


def tr(key: str, lang: Lang, **values: object) -> str:
    """The label ``key`` in ``lang``, with ``{name}`` fields filled. A missing key shows as
    itself (visible in tests, never a crash at the till)."""
    pair = TEXTS.get(key)
    text = _pick(pair, lang) if pair else key
    return text.format(**values) if values else text


def error_text(code: str, lang: Lang, fallback: str = "") -> str:
    """Plain words for an error code; unknown codes show the server's message."""
    pair = ERRORS.get(code)
    if pair is not None:
        return _pick(pair, lang)
    return fallback or _pick(ERRORS["unexpected"], lang)


def error_title(code: str, lang: Lang) -> str:
    if code in REFRESH_QR_CODES:
        return tr("title.refresh", lang)
    if code in ("unreachable",):
        return tr("title.offline", lang)
    if code in ("outcome_unknown",):
        return tr("title.unknown", lang)
    if code in ("invalid_amount", "invalid_date", "invalid_request", "invalid_input"):
        return tr("title.input", lang)
    return tr("title.refused", lang)


def district_name(code: str, lang: Lang, server_names: dict[str, str] | None = None) -> str:
    if lang == "zh" and server_names and code in server_names:
        return server_names[code]
    pair = DISTRICTS.get(code)
    return _pick(pair, lang) if pair else (server_names or {}).get(code, code)


def status_text(status: str, settled: bool, lang: Lang) -> str:
    text = tr(f"status.{status}", lang) if f"status.{status}" in TEXTS else status
    return f"{text} · {tr('status.settled', lang)}" if settled else text


def error_code_of(exc: BaseException) -> str:
    """The stable code of any failure the till can meet."""
    if isinstance(exc, ApiError):
        if exc.code == "token_invalid" and exc.details.get("reason") == "unknown_key":
            # signed with a key the server no longer has (a restart, a rotation): for the
            # cashier and the citizen that is an old code, not a strange one (issue 11 item 8)
            return "token_expired"
        return exc.code
    if isinstance(exc, VoucherError):  # a rule checked at the till (shared/rules.py)
        return exc.code
    if isinstance(exc, OutcomeUnknown):
        return "outcome_unknown"
    if isinstance(exc, Unreachable):
        return "unreachable"
    if isinstance(exc, BadAnswer):
        return "bad_answer"
    return "unexpected"


def describe_error(exc: BaseException, lang: Lang) -> tuple[str, str, str]:
    """(code, notification title, plain words) for a failure; never a traceback."""
    code = error_code_of(exc)
    fallback = exc.message if isinstance(exc, ApiError | VoucherError) and exc.code == code else ""
    return code, error_title(code, lang), error_text(code, lang, fallback)
