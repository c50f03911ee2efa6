"""One endpoint's concurrency across many workers: AIMD permits, and a teacher that asks for one per request.

`Aimd` is the limiter (in a Ray run it lives in one actor per endpoint, shared by every worker, each of which
reuses its permits a few times through `LeasedPermits` to save round trips): at most
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
import contextlib
import random
import re
from collections import Counter, deque
from dataclasses import dataclass
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
        self.granted = 0  # permits handed out
        self.requests = 0  # requests made with them (a leased permit serves several)
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

    async def release(self, granted_round: int, outcome: str, holder: str = "", earlier_ok: int = 0) -> None:
        """Return a permit with its last request's outcome: 'ok' (grow), 'congested' (429/503: cut), 'error'
        (neither), 'unused' (no request made with it). `earlier_ok`: requests that succeeded on it before, when
        a worker reused it (LeasedPermits); each grows the limit as its own release would have."""
        async with self.changed:
            if self.held[holder] <= 0:  # forgotten already: its holder died and was restarted
                return
            self.held[holder] -= 1
            self.in_flight -= 1
            self.requests += earlier_ok + (outcome != "unused")
            for _ in range(earlier_ok + (outcome == "ok")):
                self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)
            if outcome == "congested":
                self.congested += 1
                if granted_round >= self.round:  # the first signal of this round: cut
                    self.limit = max(float(self.minimum), self.limit * self.decrease)
                    self.round += 1
                    self.cuts += 1
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
            "requests": self.requests,
            "permits": self.granted,
            "congested": self.congested,
            "cuts": self.cuts,
        }


class Permits(Protocol):
    """A permit per request attempt: acquire() returns a token that release() takes back with the outcome."""

    async def acquire(self) -> Any: ...

    async def release(self, token: Any, outcome: str) -> None: ...


class RemotePermits(Protocol):
    """A shared limiter as one worker sees it (the EndpointLimiter actor through ActorPermits)."""

    async def acquire(self) -> int: ...

    async def release(self, granted_round: int, outcome: str, earlier_ok: int = 0) -> None: ...


@dataclass
class Lease:
    """A permit from the shared limiter, as one worker reuses it."""

    round: int
    uses: int = 0
    ok: int = 0  # successful requests made with it before the current one


class LeasedPermits:
    """Permits from a shared limiter, each reused by this worker for up to `reuses` requests before it goes
    back: about 2 / `reuses` round trips to the limiter per request instead of 2 (a permit's request and its
    return), which at high request rates was the limiter's and the workers' main cost.

    The endpoint's limit still holds: a worker only reuses permits it holds, and the limiter counts them as in
    flight until they come back. A permit is reused only while a request of this worker is waiting (so an idle
    worker hands its permits back for the others), only after a success, and only while it is of the newest
    round this worker has seen; so a cut (any worker's 429/503) reaches every worker within `reuses` requests
    per permit, when its permits come back and new ones carry the new round."""

    def __init__(self, remote: RemotePermits, reuses: int = 4):
        self.remote = remote
        self.reuses = max(1, reuses)
        self.waiting: deque[asyncio.Future] = deque()
        self.fetching = 0  # permits asked of the limiter and not yet granted
        self.round = 0  # the newest round seen
        self._tasks: set[asyncio.Task] = set()  # the fetches in progress (a task needs a reference to live)

    async def acquire(self) -> Lease:
        future = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        self._maybe_fetch()
        try:
            lease = await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # granted as it was cancelled: pass it on
                await self._hand(future.result())
            else:
                with contextlib.suppress(ValueError):
                    self.waiting.remove(future)
            raise
        lease.uses += 1
        return lease

    async def release(self, token: Lease, outcome: str) -> None:
        lease = token
        if outcome == "congested":
            self.round = max(self.round, lease.round + 1)  # this worker's other permits of that round go back
        if outcome == "ok" and lease.uses < self.reuses and lease.round >= self.round and self._someone_waits():
            lease.ok += 1
            await self._hand(lease)
            return
        await self.remote.release(lease.round, outcome, lease.ok)
        self._maybe_fetch()

    def _someone_waits(self) -> bool:
        return any(not f.done() for f in self.waiting)

    def _maybe_fetch(self) -> None:
        """One request for a permit at a time per worker, while a request of it waits: the worker's share
        grows one permit per round trip, and the limiter's queue holds one request per worker (a permit per
        waiting request would each cost a round trip there and back, the cost leasing saves)."""
        if self.fetching == 0 and self._someone_waits():
            self.fetching += 1
            task = asyncio.ensure_future(self._fetch())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _fetch(self) -> None:
        try:
            granted = await self.remote.acquire()
        except Exception as exc:  # the limiter is gone: each waiting request gets the error in turn, not a hang
            self.fetching -= 1
            future = self._next_waiter()
            if future is not None:
                future.set_exception(exc)
            self._maybe_fetch()
            return
        except BaseException:  # cancelled (the worker is stopping)
            self.fetching -= 1
            raise
        self.fetching -= 1
        self.round = max(self.round, granted)
        await self._hand(Lease(granted))
        self._maybe_fetch()

    async def _hand(self, lease: Lease) -> None:
        """To the longest-waiting request, else back to the limiter unused."""
        future = self._next_waiter()
        if future is not None:
            future.set_result(lease)
        else:
            await self.remote.release(lease.round, "unused", lease.ok)

    def _next_waiter(self) -> asyncio.Future | None:
        """The longest-waiting request still waiting (cancelled ones are dropped), taken off the queue."""
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                return future
        return None


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
