"""A one-slot work queue that keeps only the newest item, on its own thread.

A camera produces frames faster than a model may consume clips. Queuing them would grow latency
without bound; blocking the ROS executor would stall every other callback. Instead the newest item
replaces any item still waiting, and each replacement is counted as a drop so nothing is lost
silently.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")


class KeepLatestWorker(Generic[Item]):
    def __init__(self, process: Callable[[Item], None], name: str = "keep-latest-worker",
                 on_error: Callable[[Item, Exception], None] | None = None,
                 on_drop: Callable[[], None] | None = None) -> None:
        self._process = process
        self._on_error = on_error
        self._on_drop = on_drop  # called (on the submitting thread) for each item replaced while waiting
        self._condition = threading.Condition()
        self._pending: Item | None = None
        self._has_pending = False
        self._busy = False
        self._stopping = False
        self.submitted = 0
        self.processed = 0
        self.dropped = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: Item) -> bool:
        """Hand over an item; returns False when it replaced one that was still waiting (a drop)."""
        with self._condition:
            replaced = self._has_pending
            if replaced:
                self.dropped += 1
            self._pending, self._has_pending = item, True
            self.submitted += 1
            self._condition.notify()
        if replaced and self._on_drop is not None:
            self._on_drop()
        return not replaced

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until nothing is pending or running (for shutdown and tests)."""
        with self._condition:
            return self._condition.wait_for(lambda: not self._has_pending and not self._busy, timeout_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._has_pending or self._stopping)
                if self._stopping:
                    return
                item, self._pending, self._has_pending = self._pending, None, False
                self._busy = True
            try:
                self._process(item)
                self.processed += 1
            except Exception as error:  # reported, counted, and the worker carries on
                self.failed += 1
                if self._on_error is not None:
                    self._on_error(item, error)
            finally:
                with self._condition:
                    self._busy = False
                    self._condition.notify_all()
