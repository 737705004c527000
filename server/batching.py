"""Many concurrent requests, one round trip: coalesce calls to PostgreSQL and Redis.

At a busy till network, dozens of quotes and redemptions are in flight at once and each would
pay for its own round trip: a statement's parse, plan and commit in PostgreSQL, a wake-up of a
backend, a pass through the driver. A ``Batcher`` hands every call to a flusher task; a
flusher takes all calls waiting at that moment and runs them as one batch, so batches grow
with the load and an idle server adds no delay ("smart batching": no timer, no minimum size).
At most ``max_running`` batches are in flight; ``max_batch`` bounds one batch.

A batch is only a way of carrying calls. What a batch may do is for its ``run`` function to
say; each call still gets its own answer (or its own exception).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Runs ``run(items)`` for batches of submitted items; ``run`` answers item by item.

    ``key``: items with equal keys never share a batch (a later one waits for the next), for
    work where two calls on the same thing must not race inside one statement. ``observe`` is
    told the size of each batch.
    """

    def __init__(
        self,
        run: Callable[[list[T]], Awaitable[Sequence[R]]],
        *,
        max_batch: int = 64,
        max_running: int = 2,
        key: Callable[[T], Hashable] | None = None,
        observe: Callable[[int], object] | None = None,
    ) -> None:
        if max_batch < 1 or max_running < 1:
            raise ValueError("max_batch and max_running must be at least 1")
        self._run = run
        self.max_batch = max_batch
        self.max_running = max_running
        self._key = key
        self._observe = observe  # told each batch's size (a metric)
        self._pending: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0  # batches run so far, and the calls they carried (for metrics)
        self.items = 0

    def submit(self, item: T) -> asyncio.Future[R]:
        """Queue ``item``; the future gets its answer when its batch has run."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if self._running < self.max_running:
            self._running += 1
            # a new task runs after the callbacks already ready, so the requests being
            # handled in this turn of the loop join the batch
            task = loop.create_task(self._flush())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return future

    async def call(self, item: T) -> R:
        return await self.submit(item)

    async def drain(self) -> None:
        """Wait until every submitted item has run (at shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        if self._key is None:
            while self._pending and len(batch) < self.max_batch:
                batch.append(self._pending.popleft())
            return batch
        seen: set[Hashable] = set()
        later: list[tuple[T, asyncio.Future[R]]] = []
        while self._pending and len(batch) < self.max_batch:
            entry = self._pending.popleft()
            k = self._key(entry[0])
            if k in seen:
                later.append(entry)
            else:
                seen.add(k)
                batch.append(entry)
        self._pending.extendleft(reversed(later))
        return batch

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = self._take()
                self.batches += 1
                self.items += len(batch)
                if self._observe is not None:
                    self._observe(len(batch))
                try:
                    answers = await self._run([item for item, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                except BaseException:  # cancelled (shutdown): no caller may wait forever
                    for _, future in batch:
                        future.cancel()
                    if self._running == 1:
                        while self._pending:
                            self._pending.popleft()[1].cancel()
                    raise
                if len(answers) != len(batch):
                    error = RuntimeError(f"a batch of {len(batch)} got {len(answers)} answers")
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), answer in zip(batch, answers, strict=True):
                    if not future.done():
                        future.set_result(answer)
        finally:
            self._running -= 1
