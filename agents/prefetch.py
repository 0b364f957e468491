"""Training data built one batch ahead in a background thread.

numpy releases the GIL in its RNG fills and the encoder's matmuls, so generating the next batch
overlaps the torch step on a second core. The solo trainer and the ensemble trainer both draw
through :class:`Prefetcher`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

Batch = TypeVar("Batch")


class Prefetcher(Generic[Batch]):
    """``draw()`` called in a loop in one background thread, one result ahead of the consumer.

    The draws are exactly those of calling ``draw()`` in the consumer's loop: one thread, one
    stream, in order. ``state`` is ``snapshot()`` taken right after the last batch *handed out*
    was drawn: what a checkpoint must store for resume (the thread has already drawn one batch
    further). An exception in ``draw`` is re-raised by the :meth:`next` that would have returned
    its batch.
    """

    def __init__(self, draw: Callable[[], Batch], snapshot: Callable[[], Any]) -> None:
        self._draw, self._snapshot = draw, snapshot
        self.state = snapshot()
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                item: tuple[Any, Any, bool] = (self._draw(), self._snapshot(), True)
            except BaseException as e:  # handed to the consumer, which re-raises it
                item = (e, None, False)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.05)
                    break
                except queue.Full:
                    continue
            if not item[2]:
                return

    def next(self) -> Batch:
        batch, state, ok = self._queue.get()
        if not ok:
            raise batch
        self.state = state
        return batch

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
