"""One endpoint's concurrency across many workers: AIMD permits, and a teacher that asks for one per request.

`Aimd` is the limiter (in a Ray run it lives in one actor per endpoint, shared by every worker): at most
`limit` requests in flight; the limit starts at the maximum (`--concurrency`), grows by 1/limit per success
(about +1 per round of requests) and halves on a 429 or 503, at most once per round: a congestion signal from
a request that was granted before the last cut is the same congestion, already answered.

`ThrottledTeacher` wraps a Teacher whose own retries are off (OpenAITeacher with max_retries=0), so that
every 429/503 is seen here: it takes a permit per attempt, reports congestion, and retries 408/409/429/5xx,
timeouts and lost connections with exponential backoff and jitter (the openai client's retry rules). A retry
waits at least the answer's Retry-After (TeacherError.retry_after), up to RETRY_AFTER_CAP: the endpoint knows
when it will have room, and a worker that retries sooner only collects another 429.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import Counter
from typing import Any, Protocol

from labtax.teacher.base import Completion, TeacherError

CONGESTED = (429, 503)
STATUS = re.compile(r"HTTP (\d{3})\b")
RETRY_AFTER_CAP = 60.0  # seconds; the openai client's own limit (MAX_RETRY_AFTER_DELAY)


class Aimd:
    """Additive-increase / multiplicative-decrease permits for one endpoint."""

    def __init__(self, limit: int, *, minimum: int = 1, decrease: float = 0.5):
        self.maximum = max(minimum, limit)
        self.minimum = minimum
        self.decrease = decrease
        self.limit = float(self.maximum)
        self.in_flight = 0
        self.peak = 0
        self.round = 0  # bumped at every cut; a permit remembers the round it was granted in
        self.granted = 0
        self.congested = 0
        self.cuts = 0
        self.held: Counter[str] = Counter()  # permits in flight per holder (a worker), returned by forget()
        self._changed: asyncio.Condition | None = None

    @property
    def changed(self) -> asyncio.Condition:
        if self._changed is None:  # created in the loop that uses it
            self._changed = asyncio.Condition()
        return self._changed

    async def acquire(self, holder: str = "") -> int:
        """Wait for a permit; returns its round, to be passed back to release()."""
        async with self.changed:
            try:
                await self.changed.wait_for(lambda: self.in_flight < int(self.limit))
            except asyncio.CancelledError:
                self._wake()  # a wake-up this waiter took with it goes to the next one
                raise
            self.in_flight += 1
            self.held[holder] += 1
            self.granted += 1
            self.peak = max(self.peak, self.in_flight)
            return self.round

    async def release(self, granted_round: int, outcome: str, holder: str = "") -> None:
        """Return a permit with the request's outcome: 'ok' (grow), 'congested' (429/503: cut), 'error' (neither)."""
        async with self.changed:
            if self.held[holder] <= 0:  # forgotten already: its holder died and was restarted
                return
            self.held[holder] -= 1
            self.in_flight -= 1
            if outcome == "congested":
                self.congested += 1
                if granted_round >= self.round:  # the first signal of this round: cut
                    self.limit = max(float(self.minimum), self.limit * self.decrease)
                    self.round += 1
                    self.cuts += 1
            elif outcome == "ok":
                self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)
            self._wake()

    def _wake(self) -> None:
        """Wake as many waiters as there are free permits. Not notify_all: with hundreds of calls waiting (every
        candidate of every leaf of every worker), waking them all at each release cost the limiter more CPU
        than the permits it hands out."""
        free = int(self.limit) - self.in_flight
        if free > 0:
            self.changed.notify(free)

    async def forget(self, holder: str) -> int:
        """Take back every permit a holder had: a worker that died cannot return them (its restart calls this)."""
        async with self.changed:
            lost = self.held.pop(holder, 0)
            self.in_flight -= lost
            self._wake()
            return lost

    def stats(self) -> dict:
        return {
            "limit": round(self.limit, 2),
            "maximum": self.maximum,
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak,
            "requests": self.granted,
            "congested": self.congested,
            "cuts": self.cuts,
        }


class Permits(Protocol):
    async def acquire(self) -> int: ...

    async def release(self, granted_round: int, outcome: str) -> None: ...


def classify(error: TeacherError) -> str | None:
    """'congested' (429/503), 'retry' (408/409/other 5xx, timeout, connection), or None (final).

    The status is the error's own (`status`, set by the OpenAI backend), else the "HTTP nnn" in its message
    (errors from elsewhere, which carry only text)."""
    text = str(error)
    match = STATUS.search(text)
    status = error.status if error.status is not None else int(match.group(1)) if match else None
    if status is not None:
        if status in CONGESTED:
            return "congested"
        return "retry" if status in (408, 409) or status >= 500 else None
    if "timed out" in text or "cannot reach" in text:
        return "retry"
    return None


class ThrottledTeacher:
    """A Teacher that takes a permit per request attempt and retries what an endpoint may answer later."""

    def __init__(
        self,
        inner: Any,
        permits: Permits,
        *,
        retries: int = 4,
        base_delay: float = 0.25,
        cap: float = 8.0,
        retry_after_cap: float = RETRY_AFTER_CAP,
    ):
        self.inner = inner
        self.permits = permits
        self.retries = retries
        self.base_delay = base_delay
        self.cap = cap
        self.retry_after_cap = retry_after_cap
        self.name = inner.name
        self.model = inner.model

    async def complete(
        self,
        messages: list[dict],
        *,
        n: int = 1,
        temperature: float = 0.7,
        max_tokens: int = 256,
        seed: int | None = None,
        top_logprobs: int = 0,
    ) -> list[Completion]:
        attempt = 0
        while True:
            granted = await self.permits.acquire()
            outcome = "error"
            asked = 0.0  # the endpoint's Retry-After, capped
            try:
                completions = await self.inner.complete(
                    messages, n=n, temperature=temperature, max_tokens=max_tokens, seed=seed, top_logprobs=top_logprobs
                )
                outcome = "ok"
                return completions
            except TeacherError as exc:
                kind = classify(exc)
                outcome = "congested" if kind == "congested" else "error"
                if kind is None or attempt >= self.retries:
                    raise
                if exc.retry_after is not None:
                    asked = min(exc.retry_after, self.retry_after_cap)
            finally:
                await self.permits.release(granted, outcome)  # before the wait: a 429 cuts the limit now
            delay = min(self.cap, self.base_delay * 2**attempt)
            # jitter: workers do not retry in step; never sooner than the endpoint asked
            await asyncio.sleep(max(asked, delay * (0.5 + random.random() / 2)))
            attempt += 1

    async def aclose(self) -> None:
        await self.inner.aclose()
