"""Summaries of a server profile: py-spy's raw (collapsed) stacks or a cProfile dump.

Three views: the functions where samples land (self time), the functions samples pass
through (inclusive time, counted once per stack), and self time grouped by what the code is
(JSON, JWT/ECDSA, asyncpg, redis-py, aiohttp, the server's own code, the event loop...).
"""

from __future__ import annotations

import pstats
import re
from collections import Counter
from pathlib import Path

# (category, substrings of a frame's file); the first category that matches wins
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("JSON encode/decode (stdlib json)", ("/json/",)),
    ("JWT + ECDSA (pyjwt, cryptography)", ("/jwt/", "/cryptography/", "libcrypto", "_rust")),
    ("asyncpg (protocol, pool, records)", ("asyncpg",)),
    ("redis-py (Lua guard calls)", ("/redis/", "hiredis")),
    ("prometheus_client (metrics)", ("prometheus_client",)),
    ("logging", ("/logging/",)),
    ("aiohttp (HTTP parse/route/respond)", ("/aiohttp/", "multidict", "yarl", "propcache")),
    ("uuid / datetime / hashlib / secrets", ("/uuid.py", "datetime", "hashlib", "/hmac.py",
                                             "/secrets.py", "/random.py", "zoneinfo")),
    ("server/ handlers, guard, edge", ("/server/",)),
    ("shared/ rules, tokens, money", ("/shared/",)),
    ("event loop (asyncio, uvloop)", ("/asyncio/", "uvloop")),
)  # fmt: skip

# Steps of a request, by the functions whose stacks they are (inclusive time): (label,
# (function, file suffix) pairs). A sample counts for a step if any frame matches.
_Patterns = tuple[tuple[str, str], ...]
STAGES: tuple[tuple[str, _Patterns], ...] = (
    ("aiohttp request handling, all of it (the handlers' own work)",
     (("RequestHandler._handle_request", "web_protocol.py"),)),
    ("  QR code: decode and HMAC (quote and redeem each)",
     (("decode_qr_token", "shared/tokens.py"),)),
    ("  access token check (remembered per token)",
     (("read_access_token", "server/auth.py"),)),
    ("  request body: read_body_as",
     (("read_body_as", "server/web.py"),)),
    ("  response body: json_response (before issue 15), json_answer",
     (("json_response", "aiohttp/web_response.py"), ("json_answer", "server/web.py"))),
    ("  rules: decide, quote, select_vouchers",
     (("decide", "shared/redemption.py"), ("quote", "shared/redemption.py"),
      ("select_vouchers", "shared/rules.py"))),
    ("  request_hash, idempotency key",
     (("request_hash", "handlers/till.py"), ("idempotency_key", "handlers/till.py"))),
    ("  Prometheus metrics",
     (("", "prometheus_client/"),)),
    ("  handing calls to the batches and waiting",
     (("Batcher.submit", "server/batching.py"), ("Batcher.call", "server/batching.py"))),
    ("batched round trips, outside any request (server/batching.py)",
     (("Batcher._flush", "server/batching.py"),)),
    ("  context reads: read_contexts (one statement per batch)",
     (("read_contexts", "db/redemptions.py"),)),
    ("  redeem writes: write_redemptions (one statement per batch)",
     (("write_redemptions", "db/redemptions.py"),)),
    ("  Redis guard: begin and end Lua calls (one pipeline per batch)",
     (("Guard._pipeline", "server/guard.py"),)),
    ("  pool acquire",
     (("Pool._acquire", "asyncpg/pool.py"),
      ("PoolAcquireContext.__aenter__", "asyncpg/pool.py"))),
)  # fmt: skip

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3.11/", "/work/main/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def category_of(file: str) -> str | None:
    probe = "/" + file.replace("\\", "/")
    for name, needles in CATEGORIES:
        if any(n in probe for n in needles):
            return name
    return None


def _parse_frame(frame: str) -> tuple[str, str]:
    m = _FRAME.match(frame.strip())
    if m is None:
        return frame.strip(), ""
    return m["func"], m["file"] or ""


def summarize_pyspy(path: Path, top: int = 20) -> dict[str, object]:
    """Read ``py-spy record --format raw`` output: lines of ``f1;f2;...;leaf COUNT``."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_parse_frame(f) for f in stack.split(";")]
        # the first frames name the process/thread ("process 123:python ..."): skip them
        frames = [(fn, fl) for fn, fl in frames if fl]
        if not frames:
            continue
        total += count
        names = [f"{fn} ({_short(fl)})" for fn, fl in frames]
        self_time[names[-1]] += count
        for name in set(names):
            inclusive[name] += count
        cat = None
        for _fn, fl in reversed(frames):
            cat = category_of(_short(fl))
            if cat is not None:
                break
        categories[cat or "other"] += count
        for label, patterns in STAGES:
            if any(
                fn == want_fn and fl.endswith(want_fl) if want_fn else want_fl in fl
                for fn, fl in frames
                for want_fn, want_fl in patterns
            ):
                stages[label] += count
    views = _views(self_time, inclusive, categories, total, "samples", top)
    views["stages"] = [
        (label, round(100.0 * stages[label] / total, 1) if total else 0.0) for label, _ in STAGES
    ]
    return views


def summarize_cprofile(path: Path, top: int = 20) -> dict[str, object]:
    """cProfile measures wall time and slows Python code down about 2x: use it for shares
    only, and prefer py-spy."""
    stats = pstats.Stats(str(path))
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    raw = stats.stats  # type: ignore[attr-defined]
    total = 0.0
    for (file, _line, func), (_cc, _nc, tt, ct, _callers) in raw.items():
        if file.endswith("asyncio/runners.py") or "run_until_complete" in func:
            # wall clock of the loop itself: idle waits plus C callbacks; not attributable
            continue
        name = f"{func} ({_short(file)})"
        self_time[name] += tt
        inclusive[name] += ct
        total += tt
        if file == "~":  # a builtin: attribute it by its name
            cat = category_of(func) or "builtins (C functions)"
        else:
            cat = category_of(_short(file)) or "other"
        categories[cat] += tt
    return _views(self_time, inclusive, categories, total, "seconds", top)


def _views(
    self_time: Counter[str],
    inclusive: Counter[str],
    categories: Counter[str],
    total: float,
    unit: str,
    top: int,
) -> dict[str, object]:
    def pct(n: float) -> float:
        return round(100.0 * n / total, 1) if total else 0.0

    skip = ("run (", "_run_once", "<module>", "main (", "run_until_complete", "run_forever")
    return {
        "unit": unit,
        "total": round(total, 3),
        "categories": [(name, pct(n)) for name, n in categories.most_common()],
        "self": [(name, pct(n)) for name, n in self_time.most_common(top)],
        "inclusive": [
            (name, pct(n))
            for name, n in inclusive.most_common(top * 3)
            if not name.startswith(skip)
        ][:top],
    }


def markdown(summary: dict[str, object]) -> str:
    lines = [f"Profile of the server process ({summary['total']} {summary['unit']}).", ""]
    for title, key in (
        ("Steps of a request (inclusive)", "stages"),
        ("Self time by kind of code", "categories"),
        ("Top functions, self time", "self"),
        ("Top functions, inclusive time", "inclusive"),
    ):
        if key not in summary:
            continue
        lines += [f"| {title} | % |", "|---|---:|"]
        for name, share in summary[key]:  # type: ignore[attr-defined]
            shown = name.replace("  ", "&nbsp;&nbsp;") if key == "stages" else f"`{name}`"
            lines.append(f"| {shown} | {share} |")
        lines.append("")
    return "\n".join(lines)
