"""Errors with TF Serving's status codes, and the HTTP codes its REST API maps them to."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import grpc

# tensorflow_serving/model_servers/http_rest_api_util.cc: ToHTTPStatusCode
HTTP_STATUS = {
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 412,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}


class ServingError(Exception):
    """A request the server refuses, with the status TF Serving would answer."""

    def __init__(self, code: grpc.StatusCode, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self._http_status = http_status  # where HTTP has a closer code than TF Serving's mapping (408)

    @property
    def http_status(self) -> int:
        return self._http_status or HTTP_STATUS.get(self.code, 500)

    @property
    def error_code(self) -> int:
        """The numeric code as in tensorflow.error.Code / StatusProto.error_code."""
        return self.code.value[0]


def invalid(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


def failed_precondition(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.FAILED_PRECONDITION, message)


def unavailable(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.UNAVAILABLE, message)


class Admission:
    """How many inference requests may be inside the server at once (both protocols share it, on the
    event loop), and how far behind the event loop may fall. Past either limit a request is refused
    with UNAVAILABLE (503) before its body is parsed: under overload the server spends its CPU on
    requests it can answer in time, not on parsing ones that will wait past their deadline.

    The count's limit follows the machine (Little's law): `watch_loop` measures how many requests a
    second the server answers while it is busy, and at most `max_wait_s` of that work may be inside at
    once (never fewer than `floor`, a batch; never more than `limit`). A fixed count is wrong on every
    machine but one: 448 requests are a tenth of a second of work on a fast one and a second on a slow
    or busy one, past many clients' deadlines. Until the server has been busy, `limit` alone applies.

    The count sees only requests the loop has reached. When the loop itself is the bottleneck (on few
    cores, REST's parsing and connection handling run there), requests wait in socket buffers and in
    the loop's ready queue instead: the loop's lag, how late it runs a timer, is that wait, and a
    sustained lag over `max_loop_lag_s` refuses too, while requests are inside.
    """

    SAMPLE_S = 0.01  # how often the loop's lag and the count inside are sampled
    LAG_SMOOTHING = 0.3  # weight of the newest lag sample: one slow iteration (a GC pause) does not refuse
    WINDOW_S = 0.5  # the answer rate is measured over windows this long
    RATE_SMOOTHING = 0.3  # weight of the newest busy window's rate

    def __init__(self, limit: int, max_loop_lag_s: float = 0.0, max_wait_s: float = 0.0, floor: int = 1) -> None:
        self.hard_limit = limit
        self.limit = limit  # what applies now
        self.floor = max(1, min(floor, limit))
        self.max_loop_lag_s = max_loop_lag_s  # 0: the lag never refuses
        self.max_wait_s = max_wait_s  # 0: the count's limit stays `limit`
        self.inside = 0
        self.answered = 0
        self.loop_lag_s = 0.0
        self.busy_rate = 0.0  # answers per second while at least `floor` requests were inside; 0: not yet

    async def watch_loop(self) -> None:
        """Sample the running loop's lag and the answer rate until cancelled (on the server's loop)."""
        loop = asyncio.get_running_loop()
        window_start, answered_start, inside_sum, samples = loop.time(), self.answered, 0, 0
        while True:
            before = loop.time()
            await asyncio.sleep(self.SAMPLE_S)
            now = loop.time()
            self.loop_lag_s += self.LAG_SMOOTHING * (max(0.0, now - before - self.SAMPLE_S) - self.loop_lag_s)
            inside_sum, samples = inside_sum + self.inside, samples + 1
            if now - window_start >= self.WINDOW_S:
                rate = (self.answered - answered_start) / (now - window_start)
                if inside_sum / samples >= self.floor:  # busy: the rate is what the server can do now
                    self.busy_rate = (
                        rate if not self.busy_rate else self.busy_rate + self.RATE_SMOOTHING * (rate - self.busy_rate)
                    )
                    self._set_limit()
                window_start, answered_start, inside_sum, samples = now, self.answered, 0, 0

    def _set_limit(self) -> None:
        if self.max_wait_s and self.busy_rate:
            self.limit = max(self.floor, min(self.hard_limit, round(self.busy_rate * self.max_wait_s)))

    def check_deadline(self, remaining_s: float | None) -> None:
        """Refuse at once a request whose deadline will pass before the work ahead of it is done (at the
        answer rate measured while busy): it would only take a place in the queue and be dropped."""
        if remaining_s is None or not self.busy_rate or self.inside < self.floor:
            return
        wait_s = self.inside / self.busy_rate
        if remaining_s < wait_s:
            raise ServingError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"deadline too short: about {wait_s * 1000:.0f} ms of work ahead, {remaining_s * 1000:.0f} ms left",
            )

    def __enter__(self) -> "Admission":
        if self.inside >= self.limit:
            raise unavailable(
                f"server overloaded: {self.inside} requests in progress (the limit is {self.limit}); retry later"
            )
        # The lag refuses only beside work in progress: a lone request after one stall of the loop (a
        # GC pause, a large body parsed, the CPU taken by another process) is not overload, and under
        # overload requests are always inside. CI saw a quiet request refused after bodies nested
        # 2,000 deep had been parsed on a busy machine.
        if self.max_loop_lag_s and self.inside and self.loop_lag_s > self.max_loop_lag_s:
            raise unavailable(
                f"server overloaded: requests wait {self.loop_lag_s * 1000:.0f} ms to be read (the limit is "
                f"{self.max_loop_lag_s * 1000:.0f} ms); retry later"
            )
        self.inside += 1
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.inside -= 1
        if exc_type is None:  # answered; a request cancelled because its client left is no throughput
            self.answered += 1


class BodyBudget:
    """How many bytes of REST request bodies the server holds at once (on the event loop, no lock).

    Bodies are read before admission: a request whose body is still arriving is no work for the
    model, and counting it in Admission let a few hundred slow senders fill it and refuse everyone
    else, on both protocols. What bounds the memory they hold instead is this: a body reserves its
    Content-Length before it is read, and its reservation grows with what the server actually holds
    of it (a chunked body as it arrives; a gzip or deflate body as it is inflated, which may be a
    thousand times its Content-Length), until its answer is written. A reservation or growth past
    the budget is refused with UNAVAILABLE at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    @contextlib.contextmanager
    def reserve(self, size: int) -> Iterator["BodyReservation"]:
        reservation = BodyReservation(self)
        reservation.grow(size)
        try:
            yield reservation
        finally:
            self.held -= reservation.size


class BodyReservation:
    """One body's share of a BodyBudget; `grow` raises UNAVAILABLE when the budget has no room for more."""

    __slots__ = ("budget", "size")

    def __init__(self, budget: BodyBudget) -> None:
        self.budget, self.size = budget, 0

    def grow(self, size: int) -> None:
        extra = size - self.size
        if extra <= 0:
            return
        budget = self.budget
        others = budget.held - self.size  # a body alone may be larger than the budget (up to the size limit)
        if others and budget.held + extra > budget.limit:
            raise unavailable(
                f"server overloaded: {budget.held} bytes of request bodies held (the limit is {budget.limit}); retry later"
            )
        budget.held += extra
        self.size = size
