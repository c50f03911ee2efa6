"""An endpoint that fails is said so, never taken for the data's quality (#30), against real HTTP servers on
127.0.0.1: a failed calibration call leaves the leaf's calibration incomplete, and the re-run of a finished run
makes no call."""

from __future__ import annotations

import asyncio

from labtax.generate.cache import CallCache
from labtax.generate.gate.calibrate import CALIBRATION_INDEX
from labtax.generate.run import Settings, run_generation
from labtax.teacher.openai_backend import OpenAITeacher

from .fake_openai import FakeOpenAI, Reply, good_teacher
from .test_generate import leaves_of, make_taxonomy

# -- 4. calibration never swallows a failed call --------------------------------------------------------------


def test_a_failed_calibration_call_marks_the_leaf_incomplete_and_a_finished_run_reruns_with_no_call(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    out = tmp_path / "out"
    broken = {"on": True}

    def responder(request: dict) -> Reply:
        if broken["on"] and request.get("seed") == CALIBRATION_INDEX + 1:  # the leaf's first calibration call
            return Reply(status=500)
        return good_teacher(request)

    def run(fake) -> dict:
        async def go():
            teacher = OpenAITeacher(fake.base_url, "k", "fake-teacher", max_retries=1)
            try:
                settings = Settings(num_samples=2, max_attempts=2, calibrate=True)
                return await run_generation(leaves_of(root), teacher, out, settings)
            finally:
                await teacher.aclose()

        return asyncio.run(go())

    with FakeOpenAI(responder) as fake:
        first = run(fake)
        (leaf,) = first["leaves"].values()
        assert leaf["gate"]["incomplete"] is True and leaf["gate"]["failed_calls"] == 1
        assert leaf["gate"]["separates"] is None and "HTTP 500" in leaf["gate"]["failure"]
        assert leaf["note"].startswith("calibration incomplete: 1 of the gate's calibration calls failed")

        broken["on"] = False
        second = run(fake)  # completes the calibration: the failed call, asked again
        (leaf,) = second["leaves"].values()
        assert leaf["gate"]["incomplete"] is False and leaf["gate"]["separates"] is not None
        assert leaf["teacher_calls"] >= 1
        before, samples = fake.calls(), (out / "compositional.jsonl").read_text()

        third = run(fake)  # a finished run, again: not one call
        (leaf,) = third["leaves"].values()
        assert fake.calls() == before and leaf["teacher_calls"] == 0
        assert leaf["gate"] == second["leaves"][next(iter(second["leaves"]))]["gate"]
        assert (out / "compositional.jsonl").read_text() == samples
    assert CallCache(out / ".cache" / "calls")  # the cache is intact and readable
