"""Issue 14: the replica's lag in seconds, from the primary's WAL positions sampled over time
(``server/db/replica.py``): an idle pair reads 0, a stalled replay the time since the first
write it has not replayed, however long the primary was idle before that write."""

from __future__ import annotations

from server.db.replica import LagSampler


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_replica_that_has_replayed_everything_is_not_behind() -> None:
    ticks = Ticks()
    sampler = LagSampler(clock=ticks)
    for position in (100, 100, 250, 250):
        ticks.now += 1
        lag = sampler.lag(primary_lsn=position, replayed_lsn=position)
        assert (lag.seconds, lag.bytes, lag.up) == (0.0, 0, True)


def test_a_stalled_replay_counts_from_the_first_write_it_has_not_seen() -> None:
    ticks = Ticks()
    sampler = LagSampler(clock=ticks)
    sampler.lag(primary_lsn=100, replayed_lsn=100)  # caught up; then an hour of idling
    ticks.now += 3600
    assert sampler.lag(primary_lsn=100, replayed_lsn=100).seconds == 0
    ticks.now += 1
    first_unseen = ticks.now
    assert sampler.lag(primary_lsn=180, replayed_lsn=100).seconds == 0  # just written
    ticks.now += 1
    sampler.lag(primary_lsn=260, replayed_lsn=100)
    ticks.now += 1.5
    lag = sampler.lag(primary_lsn=300, replayed_lsn=100)
    assert lag.seconds == ticks.now - first_unseen == 2.5  # not the hour of idling
    assert lag.bytes == 200


def test_replay_that_moves_on_shortens_the_lag_to_the_next_unseen_write() -> None:
    ticks = Ticks()
    sampler = LagSampler(clock=ticks)
    sampler.lag(primary_lsn=180, replayed_lsn=100)  # t=1000: 180 written, not replayed
    ticks.now += 1
    sampler.lag(primary_lsn=260, replayed_lsn=100)  # t=1001: 260 written
    ticks.now += 1
    lag = sampler.lag(primary_lsn=260, replayed_lsn=180)  # t=1002: 180 replayed, 260 not
    assert (lag.seconds, lag.bytes) == (1.0, 80)
    ticks.now += 1
    lag = sampler.lag(primary_lsn=260, replayed_lsn=260)
    assert (lag.seconds, lag.bytes) == (0.0, 0)
