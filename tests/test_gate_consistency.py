"""generate.gate.consistency: the final number of crafted answers, agreement up to rounding, and the check itself
against a fake runner whose replies are canned (which resamples it asked for, and what it made of them)."""

from __future__ import annotations

import asyncio

import pytest

from labtax.generate.gate.consistency import RESAMPLE_OFFSET, agree, check_consistency, final_number
from labtax.generate.outcome import Reject
from labtax.teacher.base import Completion

QUESTION = "Convert 15 kilograms to pounds."
RIGHT = "One kilogram is 2.20462 pounds, so 15 kilograms is 15 x 2.20462 = 33.07 pounds."
WRONG = "Divide by 2.20462 instead: 15 kilograms is about 4.9 pounds."


@pytest.mark.parametrize(
    ("text", "number"),
    [
        (RIGHT, 33.07),
        (WRONG, 4.9),
        ("4.9 pounds", 4.9),
        ("The total comes to $1,234,567.89.", 1234567.89),
        ("-40 degrees Celsius is -40 degrees Fahrenheit.", -40.0),
        ("It is −40 °F.", -40.0),  # a typographic minus
        ("Use .5 cup.", 0.5),
        ("Use 3/4 cup of flour.", 0.75),
        ("Avogadro's number is 6.02e23.", 6.02e23),
        ("So 2 + 2 = 4.", 4.0),
        ("Count them: 1, 2, 3", 3.0),
        ("42", 42.0),
        ("15 kg = 33.07 lb (rounded to 2 decimal places).", 33.07),  # a precision is no result
        ("**Answer:** 33.07 lb", 33.07),
        # Only the last sentence counts: a number stated earlier is no final result.
        ("15 kilograms is 33.07 pounds. Let me know if you need anything else!", None),
        ("Steps:\n1. Multiply 15 by 2.20462.\n2. Round the result.", None),  # "2." is a list marker
        ("Steps:\n1) Multiply 15 by 2.20462\n2) Round the result", None),
        ("Water is H2O and the gas is CO2.", None),
        ("Install version v1.2.3 of the tool.", None),
        ("Do this before the 3rd step.", None),
        ("1/0", None),
        ("Fifteen kilograms is a little over thirty-three pounds.", None),
        ("", None),
    ],
)
def test_final_number(text, number):
    assert final_number(text) == number


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (4.9, 4.90, True),
        (4.9, 4.899, True),
        (33.07, 33.1, True),
        (33.07, 33.0, True),
        (0.0, 0.004, True),  # near zero the absolute tolerance decides
        (33.07, 4.9, False),
        (33.07, 3.307, False),
        (100.0, 102.0, False),
        (-40.0, 40.0, False),
    ],
)
def test_agree(a, b, same):
    assert agree(a, b) is same and agree(b, a) is same


def test_the_right_and_the_wrong_conversion_disagree():
    right, wrong = final_number(RIGHT), final_number(WRONG)
    assert right is not None and wrong is not None and not agree(right, wrong)


class FakeRun:
    """A runner whose `call` answers from a list of canned replies, in order; a Reject in the list is raised."""

    def __init__(self, *replies: Completion | Reject):
        self.replies = list(replies)
        self.calls: list[tuple] = []

    async def call(self, stage, fields, index, examples=()):
        self.calls.append((stage, fields, index, examples))
        reply = self.replies.pop(0)
        if isinstance(reply, Reject):
            raise reply
        return reply


FIELDS = {"task_description": "Convert between units", "question": QUESTION}
EXAMPLES = [{"question": "Convert 2 meters to feet.", "answer": "2 meters is 6.56 feet."}]
CANDIDATE = {"question": QUESTION, "answer": WRONG}


def check(run: FakeRun, answer: str, samples: int = 1, index: int = 7) -> None:
    asyncio.run(check_consistency(run, "answer", FIELDS, index, EXAMPLES, answer, CANDIDATE, samples=samples))


def test_an_agreeing_resample_passes_and_is_asked_with_its_own_seed():
    run = FakeRun(Completion("Multiply by 2.20462: about 33.069 pounds."))
    check(run, RIGHT)
    assert run.calls == [("answer", FIELDS, 7 + RESAMPLE_OFFSET, EXAMPLES)]


def test_a_disagreeing_resample_rejects_and_names_both_numbers():
    run = FakeRun(Completion(RIGHT))
    with pytest.raises(Reject) as caught:
        check(run, WRONG)
    reject = caught.value
    assert (reject.stage, reject.reason, reject.candidate) == ("consistency", "inconsistent", CANDIDATE)
    assert "4.9" in reject.detail and "33.07" in reject.detail
    assert len(run.calls) == 1


def test_an_answer_without_a_final_number_makes_no_call():
    run = FakeRun()
    check(run, "Fifteen kilograms is a little over thirty-three pounds.", samples=3)
    assert run.calls == []


def test_the_majority_of_resamples_with_a_number_decides():
    # 2 of 3 agree: the one that disagrees is outvoted.
    run = FakeRun(Completion("33.07 pounds"), Completion("4.9 pounds"), Completion("about 33.1 pounds"))
    check(run, RIGHT, samples=3)
    assert sorted(call[2] for call in run.calls) == [7 + k * RESAMPLE_OFFSET for k in (1, 2, 3)]
    # 2 of 3 disagree: rejected, though one resample agreed.
    run = FakeRun(Completion("4.9 pounds"), Completion("33.07 pounds"), Completion("4.899 pounds"))
    with pytest.raises(Reject, match="2 of 3"):
        check(run, RIGHT, samples=3)
    # 1 of 2: a tie is no majority, the answer stands.
    check(FakeRun(Completion("4.9 pounds"), Completion("33.07 pounds")), RIGHT, samples=2)


def test_failed_or_numberless_resamples_are_no_evidence():
    failed = Reject("answer", "teacher_error", "HTTP 500")
    truncated = Completion("15 kilograms is 4.9", finish_reason="length")  # parse.answer rejects it
    numberless = Completion("Just multiply by the conversion factor.")
    check(FakeRun(failed, truncated, numberless), RIGHT, samples=3)
    # The one resample with a number decides alone.
    with pytest.raises(Reject, match="1 of 1"):
        check(FakeRun(failed, numberless, Completion(RIGHT)), WRONG, samples=3)


# -- end to end: a real HTTP teacher, generation as it runs --------------------------------------------------


def _numeric_teacher(resampled_number: str):
    from .fake_openai import Reply, good_teacher, stage_of

    def reply(request: dict):
        if stage_of(request) == "answer":
            number = resampled_number if request["seed"] >= RESAMPLE_OFFSET else "42"
            return Reply(f"Working through the numbers step by step, the result is {number}.")
        return good_teacher(request)

    return reply


@pytest.mark.parametrize(("resampled", "accepted"), [("42", 2), ("17", 0)])
def test_generation_rejects_answers_whose_resample_ends_elsewhere(tmp_path, resampled, accepted):
    from .fake_openai import FakeOpenAI, stage_of
    from .test_gate import LEAF
    from .test_generate import generate, make_taxonomy, read_jsonl

    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    with FakeOpenAI(_numeric_teacher(resampled)) as fake:
        summary = generate(root, fake, tmp_path / "out", n=2, max_attempts=2)
        resamples = [r for r in fake.requests if stage_of(r) == "answer" and r["seed"] >= RESAMPLE_OFFSET]
    (leaf,) = summary["leaves"].values()
    assert leaf["accepted"] == accepted and resamples
    if not accepted:
        assert leaf["rejected"] == {"inconsistent": 4}
        rejected = read_jsonl(tmp_path / "out" / LEAF.rsplit("/", 1)[0] / "rejected.jsonl")
        assert all(r["stage"] == "consistency" and "42" in r["detail"] and "17" in r["detail"] for r in rejected)
