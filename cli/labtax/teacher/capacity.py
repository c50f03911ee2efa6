"""How many calls an endpoint serves at once, measured from its own answers, and the in-flight limit that follows.

A server that answers one request at a time (llama.cpp's default, Ollama with one slot) queues whatever else is
sent; one that batches (vLLM) serves it together. The client cannot see the queue, but it can see the tokens
delivered. The reference is a call the server served alone (the run's first calls go out one at a time until two
have decoded a reply, REFERENCE_TRIES at most; the first also pays for the connection): the fastest one's
completion tokens over its latency are one call's speed. Over each window of later answers, the completion
tokens answered per second of busy time (some call in flight), divided by that speed, is how many calls the
server decoded at once: about 1 for a one-at-a-time server however many wait, about the number in flight for one
that serves all it is sent. Only answers that decoded a real reply (MIN_TOKENS or more) count, so a window of
one-digit judge answers, whose time is mostly the prompt, is no evidence either way.

The limit follows, AIMD-like: while the server decodes about as many calls as are in flight, it grows by one (up
to --concurrency); when two windows running find it decoding fewer than QUEUES of them and at most 1.5, the
limit drops to two, one call served and one waiting its turn, so the server never idles between answers. Wall
time is the server's either way; what changes is that calls no longer wait minutes in a queue the client cannot
see, and the run says what the endpoint served (bench/README.md, "Endpoint concurrency").
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass

WINDOW = 12  # decoding answers per measurement
MIN_TOKENS = 8  # completion tokens for an answer to count: a decoded reply, not a digit after a long prompt
REFERENCES = 2  # decoding calls served alone before the limit opens (the first also pays for the connection)
REFERENCE_TRIES = 4  # calls sent one at a time, at most, to find them (a run of judge calls has none)
SERVES_ALL = 0.8  # decoding >= this share of the calls in flight: the server keeps up, the limit may grow
QUEUES = 0.5  # decoding < this share (and at most ONE_AT_A_TIME calls), two windows running: the limit drops
ONE_AT_A_TIME = 1.5


@dataclass
class Window:
    """What happened since the last measure: decoding tokens delivered, busy time (some call in flight) and the
    time-integral of the calls in flight."""

    tokens: int = 0
    answers: int = 0
    busy: float = 0.0
    area: float = 0.0

    def measure(self, speed: float) -> tuple[float, float] | None:
        """(calls the server decoded at once, calls in flight), averaged over the busy time; `speed`: one call's
        tokens per second when served alone. None: nothing to go by."""
        if self.busy <= 0 or speed <= 0:
            return None
        return self.tokens / self.busy / speed, self.area / self.busy


class Capacity:
    """The in-flight limit for one endpoint: a semaphore of --concurrency whose size follows what it serves."""

    def __init__(self, maximum: int, window: int = WINDOW):
        self.maximum = max(1, maximum)
        self.limit = 1  # the first calls go alone, until one is the reference
        self.in_flight = 0
        self.peak = 0
        self.speed: float | None = None  # tokens/s of a decoding call served alone
        self.decoding: float | None = None  # the last measure of calls decoded at once
        self.lowered = False
        self._window = window
        self._current = Window()
        self._changed_at: float | None = None  # when in_flight last changed
        self._queued_windows = 0
        self._sent = 0  # calls sent so far
        self._references = 0  # decoding calls served alone
        self._waiting: deque[asyncio.Future] = deque()  # callers waiting for room, first come first served

    def _count(self, change: int) -> None:
        """Change the calls in flight, integrating the old count over the time it held."""
        now = time.monotonic()
        if self._changed_at is not None and self.in_flight > 0:
            self._current.busy += now - self._changed_at
            self._current.area += self.in_flight * (now - self._changed_at)
        self._changed_at = now
        self.in_flight += change
        self.peak = max(self.peak, self.in_flight)

    async def acquire(self) -> tuple[float, int, bool]:
        """Wait for room under the limit; returns (the call's start, calls sent before it, whether it is the only
        one in flight), for release()."""
        if self.in_flight >= self.limit or self._waiting:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                await waiter  # release() took the room for us
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # woken, then cancelled: the room goes to the next
                    self._count(-1)
                    self._wake()
                else:
                    self._waiting.remove(waiter)
                raise
        else:
            self._count(+1)
        self._sent += 1
        return time.monotonic(), self._sent - 1, self.in_flight == 1

    def release(self, ticket: tuple[float, int, bool], tokens: int | None) -> None:
        """A call is over (synchronous, so a cancelled call still gives its room back); `tokens`: its answer's
        completion tokens (None: it failed, nothing to learn from it)."""
        started, before, first_alone = ticket
        alone = first_alone and self._sent == before + 1  # nothing else in flight when sent, nothing sent since
        self._count(-1)
        if tokens is not None and tokens >= MIN_TOKENS:
            self.observe(tokens, time.monotonic() - started, alone)
        if (
            self.limit < self.maximum
            and not self.lowered
            and (self._references >= REFERENCES or self._sent >= REFERENCE_TRIES)
        ):
            self.limit = self.maximum  # the reference is taken (or none came in a few calls): open up
        self._wake()

    def _wake(self) -> None:
        while self._waiting and self.in_flight < self.limit:
            waiter = self._waiting.popleft()
            if not waiter.done():
                self._count(+1)
                waiter.set_result(None)

    def observe(self, tokens: int, seconds: float, alone: bool) -> None:
        """Learn from one decoding answer; every `window` of them, set the limit from the measure."""
        if alone:
            speed = tokens / max(seconds, 1e-6)
            self.speed = speed if self.speed is None else max(self.speed, speed)
            self._references += 1
            self._current = Window()  # the measure starts after the reference
            return
        self._current.tokens += tokens
        self._current.answers += 1
        if self._current.answers < self._window or self.speed is None:
            return
        measure = self._current.measure(self.speed)
        self._current = Window()
        if measure is None:
            return
        decoding, in_flight = measure
        self.decoding = decoding
        if decoding < QUEUES * in_flight and decoding <= ONE_AT_A_TIME:
            self._queued_windows += 1
            if self._queued_windows >= 2 and self.limit > 2:
                self.limit, self.lowered = 2, True
        else:
            self._queued_windows = 0
            if decoding >= SERVES_ALL * in_flight:
                self.limit = min(self.maximum, self.limit + 1)

    def note(self, who: str) -> str | None:
        """One line for the end of a run whose endpoint decoded one call at a time while more were sent."""
        if not self.lowered or self.decoding is None:
            return None
        return (
            f"note: {who} decoded about {self.decoding:.1f} calls at a time (measured from its answers), so labtax "
            f"kept {self.limit} in flight, not --concurrency {self.maximum}: the rest would only have waited in its "
            "queue. A server that batches requests (vLLM) or runs more slots serves more at once."
        )
