"""#27 item 3: how many calls an endpoint serves at once, measured from its answers (teacher/capacity.py).

The measure and the limit are checked on simulated servers with a virtual clock (a server of 1, 2 or 8 slots,
first come first served, each call taking its tokens' time), so the verdicts are exact, not timed; then a real
run of `labtax generate` against a fake server that decodes one request at a time, over HTTP.
"""

from __future__ import annotations

import asyncio
import heapq

import pytest

from labtax.teacher import capacity as capacity_module
from labtax.teacher.capacity import Capacity, Window

from .conftest import run_labtax
from .fake_openai import FakeOpenAI, Reply, good_teacher, stage_of
from .test_generate import make_taxonomy
from .test_generate_cli import _env


def tokens_of(index: int) -> int:
    """A mix like generation's: decoded replies of 20 to 220 tokens, and every fourth a one-digit judge answer."""
    return 1 if index % 4 == 3 else 20 + (index * 37) % 200


def simulate(slots: int, maximum: int = 8, calls: int = 200, judge_seconds: float = 0.0, monkeypatch=None) -> dict:
    """A closed loop over a virtual clock: the client keeps what Capacity allows in flight; the server serves
    `slots` calls at once, first come first served, a decoded token every 10 ms (`judge_seconds`: what a one-token
    judge answer costs, its long prompt). Returns the limiter and the in-flight counts seen after the first half."""
    now = [0.0]
    monkeypatch.setattr(capacity_module.time, "monotonic", lambda: now[0])
    cap = Capacity(maximum)
    free = [0.0] * slots  # when each slot is next free
    done: list = []  # (end, order, ticket, tokens)
    late_in_flight: list[int] = []

    async def run() -> None:
        sent = 0
        while sent < calls or done:
            while sent < calls and cap.in_flight < cap.limit:
                ticket = await cap.acquire()
                tokens = tokens_of(sent)
                slot = min(range(slots), key=lambda s: free[s])
                begin = max(now[0], free[slot])
                free[slot] = begin + (judge_seconds if tokens == 1 and judge_seconds else tokens * 0.01)
                heapq.heappush(done, (free[slot], sent, ticket, tokens))
                sent += 1
                if sent > calls // 2:
                    late_in_flight.append(cap.in_flight)
            end, _, ticket, tokens = heapq.heappop(done)
            now[0] = end
            cap.release(ticket, tokens)

    asyncio.run(run())
    return {"capacity": cap, "late": late_in_flight}


def test_a_server_that_decodes_one_call_at_a_time_gets_two_in_flight_not_eight(monkeypatch):
    found = simulate(1, monkeypatch=monkeypatch)
    cap = found["capacity"]
    assert cap.lowered and cap.limit == 2 and max(found["late"]) == 2, (cap.limit, found["late"])
    assert cap.decoding is not None and 0.5 < cap.decoding <= 1.0
    assert "decoded about" in (cap.note("the teacher endpoint 127.0.0.1:1") or "")


@pytest.mark.parametrize("slots", [2, 8])
def test_a_server_that_serves_several_at_once_keeps_the_whole_concurrency(monkeypatch, slots):
    found = simulate(slots, monkeypatch=monkeypatch)
    cap = found["capacity"]
    assert not cap.lowered and cap.limit == 8 and max(found["late"]) == 8
    assert cap.note("x") is None
    assert cap.decoding is not None and cap.decoding > 1.5


def test_slow_judge_answers_are_no_evidence_of_a_queue(monkeypatch):
    """One-token answers that take long (their prompts) at a batching server do not make it look one-at-a-time."""
    found = simulate(8, judge_seconds=2.0, monkeypatch=monkeypatch)
    assert not found["capacity"].lowered and found["capacity"].limit == 8


def test_the_first_call_goes_alone_and_opens_the_way_for_the_rest():
    async def go():
        cap = Capacity(4)
        first = await cap.acquire()
        second = asyncio.ensure_future(cap.acquire())
        await asyncio.sleep(0)
        assert not second.done() and cap.in_flight == 1  # waits for the reference call
        cap.release(first, 40)
        third = asyncio.ensure_future(cap.acquire())
        await asyncio.sleep(0)
        assert cap.limit == 1 and not third.done()  # the second goes alone too: the first paid for the connection
        cap.release(await second, 40)
        tickets = [await third] + [await cap.acquire() for _ in range(3)]
        assert cap.in_flight == 4 == cap.limit and cap.speed is not None
        fifth = asyncio.ensure_future(cap.acquire())
        sixth = asyncio.ensure_future(cap.acquire())
        await asyncio.sleep(0)
        fifth.cancel()  # a cancelled waiter takes no room with it
        await asyncio.gather(fifth, return_exceptions=True)
        cap.release(tickets[0], None)
        await asyncio.wait_for(sixth, 5)
        assert cap.in_flight == 4

    asyncio.run(go())


def test_calls_that_decode_nothing_open_the_way_after_a_few_with_no_reference():
    """`labtax vet` asks only one-digit judge answers: no reference comes, so the limit opens after a few calls."""

    async def go():
        cap = Capacity(4)
        for _ in range(4):
            assert cap.limit == 1
            cap.release(await cap.acquire(), 1)
        assert cap.limit == 4 and cap.speed is None

    asyncio.run(go())


def test_the_measure_is_the_tokens_answered_over_one_calls_speed():
    # 300 tokens answered in 3 busy seconds by a server whose single call decodes 100 tokens/s, 2 in flight on
    # average: it decoded 1 at a time
    decoding, in_flight = Window(tokens=300, answers=3, busy=3.0, area=6.0).measure(speed=100.0)
    assert decoding == pytest.approx(1.0) and in_flight == pytest.approx(2.0)
    # the same 300 tokens in 1.5 s with 3 in flight: 2 at once (each at 2/3 of its own speed)
    decoding, in_flight = Window(tokens=300, answers=3, busy=1.5, area=4.5).measure(speed=100.0)
    assert decoding == pytest.approx(2.0) and in_flight == pytest.approx(3.0)
    assert Window().measure(100.0) is None


def long_answers(request: dict) -> Reply:
    """good_teacher, with answers long enough to be decoding evidence (MIN_TOKENS)."""
    reply = good_teacher(request)
    if stage_of(request) == "answer":
        reply.content += " It covers the main steps in order, with an example and the one caveat that matters."
    return reply


def generate_against(tmp_path, **server) -> tuple:
    """`labtax generate` of 40 samples for one leaf against a fake with `server`'s options: (the run, the
    requests inside the server as each arrived)."""
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    with FakeOpenAI(long_answers, **server) as fake:
        proc = run_labtax(
            "generate", "-n", "40", "--no-calibrate", "--output", str(tmp_path / "out"), cwd=root, env=_env(fake)
        )
        loads = list(fake.loads)
    assert proc.returncode == 0, proc.stderr
    return proc, loads


def test_generate_against_a_one_at_a_time_server_sends_two_at_once_and_says_why(tmp_path):
    proc, loads = generate_against(tmp_path, one_at_a_time=0.004)
    notes = [line for line in proc.stderr.splitlines() if "decoded about" in line]
    assert len(notes) == 1 and "kept 2 in flight, not --concurrency 8" in notes[0], proc.stderr
    assert max(loads) > 3 and max(loads[-10:]) <= 3, loads  # 8 queued at first; 2 (and one finishing) at the end


def test_generate_against_a_server_that_serves_all_at_once_keeps_its_concurrency(tmp_path):
    proc, loads = generate_against(tmp_path, latency=0.05)
    assert "decoded about" not in proc.stderr and max(loads) > 3, (proc.stderr, loads)
