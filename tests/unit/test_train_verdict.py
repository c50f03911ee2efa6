"""train.verdict's line: the numbers, and in plain words why a handful of samples moved nothing."""

from labtax.train.verdict import DID_NOT_LEARN, FEW_SAMPLES, LEARNED, verdict_line


def _phase(samples: int, before: float, after: float) -> dict:
    return {
        "name": "skills",
        "samples": samples,
        "own_leaves": ["a/qna.yaml"],
        "heldout": {"a/qna.yaml": {"loss_before": before, "loss_after": after}},
        "steps": 3,
        "seconds": 7.0,
        "verdict": DID_NOT_LEARN if after > before else LEARNED,
    }


def test_a_handful_of_samples_that_did_not_learn_is_said_to_be_too_few_with_what_would_change_it():
    line = verdict_line(DID_NOT_LEARN, [_phase(4, 2.6, 2.7)])
    assert line.startswith("did not learn: held-out answer loss skills 2.600 -> 2.700")
    assert "4 vetted samples are too few to move the model" in line and "--base-url" in line


def test_enough_samples_or_a_drop_get_the_numbers_alone():
    assert "too few" not in verdict_line(DID_NOT_LEARN, [_phase(FEW_SAMPLES, 2.6, 2.7)])
    assert "too few" not in verdict_line(LEARNED, [_phase(4, 2.7, 2.6)])
