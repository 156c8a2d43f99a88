"""Dynamic batching: concurrent requests to one signature merged into one model call.

The parameters of TF Serving's BasicBatchScheduler: a batch closes when it is
full (max_batch_size rows) or when its first task has waited
batch_timeout_micros; num_batch_threads batches run at once; at most
max_enqueued_batches batches' worth of rows wait, and a task that does not
fit is refused with UNAVAILABLE instead of queueing without bound.

One deliberate difference: a task that finds no batch running starts at once
instead of waiting out the timeout (nothing is gained by waiting for an idle
model), so a lone client pays no batching latency; under load, requests
queue behind the running batch and are merged as TF Serving merges them."""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from concurrent.futures import Future
from typing import Callable

import grpc
import numpy as np

from serving.model_server.config import BatchingParameters
from serving.model_server.errors import ServingError, invalid, unavailable

Tensors = dict[str, np.ndarray]


class _Task:
    """One request's rows. Its future is a concurrent.futures.Future, or an asyncio.Future of
    `loop` for callers on an event loop (settled on that loop, once per batch)."""

    __slots__ = ("inputs", "size", "key", "future", "loop", "enqueued")

    def __init__(self, inputs: Tensors, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.inputs = inputs
        self.size = len(next(iter(inputs.values())))
        # Tasks batch together only when every input has the same shape past the batch dimension.
        self.key = tuple((k, v.shape[1:]) for k, v in sorted(inputs.items()))
        self.loop = loop
        self.future: asyncio.Future | Future = loop.create_future() if loop is not None else Future()
        self.enqueued = time.monotonic()


def _settle(results: list) -> None:
    """Hands each waiting request its rows or its error, skipping any whose future was
    cancelled (its client has gone); on the futures' event loop for asyncio futures."""
    for future, value, error in results:
        if not future.done():
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)


class BatchScheduler:
    def __init__(
        self,
        run: Callable[[Tensors], Tensors],
        params: BatchingParameters,
        name: str,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        self._run = run
        self._params = params
        self._name = name
        self._on_batch = on_batch or (lambda rows, padded: None)
        self._queue: collections.deque[_Task] = collections.deque()
        self._queued_rows = 0
        self._capacity = params.max_batch_size * params.max_enqueued_batches
        self._timeout = params.batch_timeout_micros / 1e6
        self._changed = threading.Condition()
        self._forming = threading.Lock()  # one thread gathers a batch at a time; the others run theirs
        self._closed = False
        self._running = 0  # batches executing now
        self._threads = [
            threading.Thread(target=self._loop, name=f"batch-{name}-{i}", daemon=True)
            for i in range(params.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def __call__(self, inputs: Tensors) -> Tensors:
        return self.submit(inputs).result()

    def submit(self, inputs: Tensors) -> Future:
        """A concurrent.futures.Future of this task's outputs, for callers on plain threads."""
        return self._enqueue(_Task(inputs))

    def submit_async(self, inputs: Tensors) -> asyncio.Future:
        """An asyncio.Future of the running loop: the batch thread settles every task of a batch
        that waits on one loop with a single call_soon_threadsafe, not one hand-off per request."""
        return self._enqueue(_Task(inputs, asyncio.get_running_loop()))

    def _enqueue(self, task: _Task):
        if task.size > self._params.max_batch_size:
            raise invalid(
                f"Task size {task.size} is larger than maximum input batch size {self._params.max_batch_size}"
            )
        with self._changed:
            if self._closed:
                raise unavailable(f"batch scheduler for {self._name} is shutting down")
            if self._queued_rows + task.size > self._capacity:
                self._drop_abandoned()
            if self._queued_rows + task.size > self._capacity:
                raise unavailable("The batch scheduling queue to which this task was submitted is full")
            self._queue.append(task)
            self._queued_rows += task.size
            self._changed.notify_all()
        return task.future

    def _drop_abandoned(self) -> None:
        """Removes queued tasks whose caller gave up (under the lock): a full queue of requests nobody
        waits for any more must not refuse new ones."""
        kept = collections.deque(t for t in self._queue if not t.future.done())
        self._queued_rows = sum(t.size for t in kept)
        self._queue = kept

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)

    # --- worker side ------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._forming:
                batch = self._gather()
            if batch is None:
                return
            if batch:
                self._execute(batch)

    def _gather(self) -> list[_Task] | None:
        with self._changed:
            self._changed.wait_for(lambda: self._queue or self._closed)
            if not self._queue:
                return None
            deadline = self._queue[0].enqueued + self._timeout
            # Waiting for company only pays while another batch occupies the model; an idle model starts at once.
            while self._queued_rows < self._params.max_batch_size and not self._closed and self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            self._drop_abandoned()  # callers that gave up while waiting (deadline passed, client gone)
            if not self._queue:
                return []
            batch, rows, key = [], 0, self._queue[0].key
            kept: collections.deque[_Task] = collections.deque()
            while self._queue:
                task = self._queue.popleft()
                if task.key == key and rows + task.size <= self._params.max_batch_size:
                    batch.append(task)
                    rows += task.size
                else:
                    kept.append(task)
            self._queue = kept
            self._queued_rows -= rows
            self._running += 1
            return batch

    def _padded_size(self, rows: int) -> int:
        for size in self._params.allowed_batch_sizes:
            if size >= rows:
                return size
        return rows

    def _execute(self, batch: list[_Task]) -> None:
        try:
            self._run_batch(batch)
        finally:
            with self._changed:
                self._running -= 1
                self._changed.notify_all()

    def _run_batch(self, batch: list[_Task]) -> None:
        try:
            rows = sum(t.size for t in batch)
            padded = self._padded_size(rows)
            inputs = {}
            for key in batch[0].inputs:
                merged = np.concatenate([t.inputs[key] for t in batch]) if len(batch) > 1 else batch[0].inputs[key]
                if padded > rows:  # pad with copies of the first row; the extra outputs are dropped
                    merged = np.concatenate([merged, np.repeat(merged[:1], padded - rows, axis=0)])
                inputs[key] = merged
            self._on_batch(rows, padded)
            outputs = self._run(inputs)
            results: list[tuple[_Task, dict[str, np.ndarray] | None, Exception | None]] = []
            start = 0
            for task in batch:
                results.append((task, {k: v[start : start + task.size] for k, v in outputs.items()}, None))
                start += task.size
        except ServingError as e:
            if len(batch) > 1 and e.code == grpc.StatusCode.INVALID_ARGUMENT:
                # One bad request (say, bytes that are not an image) must not fail the ones merged with it.
                for task in batch:
                    self._run_batch([task])
                return
            results = [(task, None, e) for task in batch]
        except Exception as e:  # noqa: BLE001 - every waiting request gets the error, none hangs
            results = [(task, None, e) for task in batch]
        self._deliver(results)

    @staticmethod
    def _deliver(results: list) -> None:
        """Thread futures are settled here; the futures of each event loop on that loop, in one call."""
        by_loop: dict[asyncio.AbstractEventLoop | None, list] = {}
        for task, value, error in results:
            by_loop.setdefault(task.loop, []).append((task.future, value, error))
        for loop, items in by_loop.items():
            if loop is None:
                _settle(items)
                continue
            try:
                loop.call_soon_threadsafe(_settle, items)
            except RuntimeError:  # the loop has closed: the server is stopping and nobody waits
                pass
