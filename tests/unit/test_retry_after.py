"""Issue 14: reading the server's Retry-After (RFC 9110 §10.2.3) in the till's client: the
seconds or the HTTP date it asks for; garbage keeps the client's own backoff; a negative or
past wait is none, a huge one is capped; jitter only ever adds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from client.http import retry_after_s, retry_wait

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("1", 1.0),
        ("120", 120.0),
        (" 2 ", 2.0),
        ("0", 0.0),
        ("-5", 0.0),  # negative: no wait (then capped below by the caller's floor)
        ("Tue, 01 Dec 2026 12:00:07 GMT", 7.0),  # IMF-fixdate
        ("Tuesday, 01-Dec-26 12:00:30 GMT", 30.0),  # obsolete RFC 850 form
        ("Tue Dec  1 12:01:00 2026", 60.0),  # asctime form, GMT
        ("Tue, 01 Dec 2026 11:59:00 GMT", 0.0),  # already past
    ],
)
def test_seconds_and_http_dates_are_read(header: str, seconds: float) -> None:
    assert retry_after_s(header, NOW) == seconds


@pytest.mark.parametrize("header", [None, "", "   ", "soon", "1e3", "0x10", "1 2", "12 Dec", "NaN"])
def test_garbage_is_not_a_wait(header: str | None) -> None:
    assert retry_after_s(header, NOW) is None


def test_garbage_keeps_the_clients_own_backoff() -> None:
    for header in (None, "soon", "Tomorrow, maybe"):
        assert retry_wait(header, NOW, default=0.8, cap=10, rand=lambda: 0.0) == 0.8


def test_what_the_server_asks_is_waited_with_jitter_only_added() -> None:
    assert retry_wait("3", NOW, default=0.4, cap=10, rand=lambda: 0.0) == 3.0
    assert retry_wait("3", NOW, default=0.4, cap=10, rand=lambda: 0.999) == pytest.approx(3.2997)
    date = (NOW + timedelta(seconds=4)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert retry_wait(date, NOW, default=0.4, cap=10, rand=lambda: 0.5) == pytest.approx(4.2)
    # a queue of tills refused together comes back spread over [t, 1.1 t), never sooner
    import random

    rng = random.Random(14)
    spread = [retry_wait("2", NOW, default=0.4, cap=10, rand=rng.random) for _ in range(200)]
    assert min(spread) >= 2.0 and max(spread) < 2.2
    assert max(spread) - min(spread) > 0.15


def test_negative_and_huge_waits_are_capped() -> None:
    assert retry_wait("-5", NOW, default=0.4, cap=10, rand=lambda: 0.9) == 0.0
    assert retry_wait("86400", NOW, default=0.4, cap=10, rand=lambda: 0.9) == 10.0
    assert retry_wait("9" * 400, NOW, default=0.4, cap=10, rand=lambda: 0.9) == 10.0
    far = "Fri, 01 Jan 2100 00:00:00 GMT"
    assert retry_wait(far, NOW, default=0.4, cap=10, rand=lambda: 0.9) == 10.0
    assert retry_wait("9.5", NOW, default=0.4, cap=10, rand=lambda: 0.999) == 10.0  # jitter too
    assert retry_wait("soon", NOW, default=30.0, cap=10, rand=lambda: 0.0) == 10.0
