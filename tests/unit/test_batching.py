"""server.batching: concurrent calls share one run, each gets its own answer."""

from __future__ import annotations

import asyncio

import pytest

from server.batching import Batcher


class Recorder:
    def __init__(self, fail_on: object = None, answers: int | None = None) -> None:
        self.batches: list[list[object]] = []
        self.fail_on = fail_on
        self.answers = answers
        self.gate = asyncio.Event()
        self.gate.set()

    async def run(self, items: list[object]) -> list[object]:
        self.batches.append(list(items))
        await self.gate.wait()
        if self.fail_on in items:
            raise ValueError(f"refused {self.fail_on}")
        answers: list[object] = [("done", i) for i in items]
        return answers[: self.answers] if self.answers is not None else answers


async def test_a_lone_call_runs_at_once_and_gets_its_answer() -> None:
    rec = Recorder()
    batcher: Batcher[object, object] = Batcher(rec.run)
    assert await batcher.call(1) == ("done", 1)
    assert rec.batches == [[1]]


async def test_calls_made_together_share_a_batch_and_keep_their_own_answers() -> None:
    rec = Recorder()
    batcher: Batcher[object, object] = Batcher(rec.run, max_running=1)
    answers = await asyncio.gather(*(batcher.call(i) for i in range(10)))
    assert answers == [("done", i) for i in range(10)]
    assert rec.batches == [list(range(10))]
    assert (batcher.batches, batcher.items) == (1, 10)


async def test_calls_arriving_while_batches_run_wait_for_the_next_one() -> None:
    rec = Recorder()
    rec.gate.clear()
    batcher: Batcher[object, object] = Batcher(rec.run, max_running=1, max_batch=3)
    first = [batcher.submit(i) for i in range(2)]
    await asyncio.sleep(0)  # the flusher takes 0 and 1 and waits at the gate
    later = [batcher.submit(i) for i in range(2, 7)]
    rec.gate.set()
    assert await asyncio.gather(*first, *later) == [("done", i) for i in range(7)]
    assert rec.batches == [[0, 1], [2, 3, 4], [5, 6]]  # max_batch bounds each one


def by_three(item: object) -> int:
    assert isinstance(item, int)
    return item % 3


async def test_equal_keys_never_share_a_batch() -> None:
    rec = Recorder()
    batcher: Batcher[object, object] = Batcher(rec.run, max_running=1, key=by_three)
    await asyncio.gather(*(batcher.call(i) for i in range(7)))
    assert rec.batches == [[0, 1, 2], [3, 4, 5], [6]]
    for batch in rec.batches:
        assert len({i % 3 for i in batch}) == len(batch)  # type: ignore[operator]


async def test_a_failing_batch_fails_each_of_its_calls_and_not_the_next_batch() -> None:
    rec = Recorder(fail_on=2)
    rec.gate.clear()
    batcher: Batcher[object, object] = Batcher(rec.run, max_running=1)
    doomed = [batcher.submit(i) for i in range(3)]
    await asyncio.sleep(0)
    fine = batcher.submit(5)
    rec.gate.set()
    for future in doomed:
        with pytest.raises(ValueError, match="refused 2"):
            await future
    assert await fine == ("done", 5)


async def test_a_run_that_answers_the_wrong_number_of_calls_fails_them_all() -> None:
    batcher: Batcher[object, object] = Batcher(Recorder(answers=1).run, max_running=1)
    results = await asyncio.gather(*(batcher.call(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results), results


async def test_at_most_max_running_batches_are_in_flight() -> None:
    in_flight = 0
    most = 0

    async def run(items: list[int]) -> list[int]:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return items

    batcher: Batcher[int, int] = Batcher(run, max_running=2, max_batch=1)
    assert await asyncio.gather(*(batcher.call(i) for i in range(8))) == list(range(8))
    assert most == 2
    await batcher.drain()


def test_sizes_below_one_are_refused() -> None:
    async def run(items: list[int]) -> list[int]:
        return items

    with pytest.raises(ValueError):
        Batcher(run, max_batch=0)
    with pytest.raises(ValueError):
        Batcher(run, max_running=0)
