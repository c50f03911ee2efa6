"""generate.gate.checks on crafted strings: each bad kind is caught, and good answers pass."""

import pytest

from labtax.generate.gate.checks import check_answer


def _prose(words: int) -> str:
    """Varied English-like prose: no phrase repeats often, function words where English has them."""
    import random

    rng = random.Random(7)
    nouns = [
        f"{stem}{suffix}"
        for stem in ("kilo", "pound", "scale", "unit", "mass", "ratio", "gram", "ounce")
        for suffix in ("", "s", "ing", "er", "ed")
    ]
    out = []
    while len(out) < words:
        out += [
            rng.choice(["the", "a", "of", "to", "and"]),
            rng.choice(nouns),
            rng.choice(nouns),
            rng.choice(["is", "was", "in", "for"]),
        ]
    return " ".join(out[:words]) + "."


LONG_PROSE = _prose(700)
QUESTION = "How many kilograms are in 15 pounds, and how do you convert between the two units?"
GOOD = [
    "About 6.8 kilograms: divide the number of pounds by 2.2046, so 15 / 2.2046 is roughly 6.8 kg.",
    "Paris.",
    "- Step 1: weigh the flour.\n- Step 2: sift it into the bowl\n- Step 3: fold in the eggs",
    "The answer is 42 because the sum of the first three numbers in the list is forty-two, as shown above.",
]
BAD = {
    "refusal": ["I'm sorry, I can't help with that.", "As an AI language model, I do not have opinions on weights."],
    "truncated": ["To convert pounds to kilograms you divide the number of pounds by 2.2046 and then you round the"],
    "repetition": ["the cat sat on " * 12, "Kilograms are heavy. " * 40],
    "restates_question": [QUESTION, QUESTION.lower().rstrip("?")],
    "wrong_language": [
        "十五磅大约等于六点八公斤。",
        "Para convertir libras en kilogramos se divide el número de libras por dos coma dos y se redondea el resultado final.",
    ],
    "too_long": [LONG_PROSE],
}


@pytest.mark.parametrize("answer", GOOD)
def test_good_answers_pass(answer):
    assert check_answer(QUESTION, answer, "stop") is None


def test_a_long_varied_answer_passes_until_the_word_budget():
    answer = LONG_PROSE
    assert check_answer(QUESTION, answer, "stop", max_words=2000) is None


@pytest.mark.parametrize("reason,answer", [(r, a) for r, answers in BAD.items() for a in answers])
def test_each_bad_kind_is_caught_with_its_reason(reason, answer):
    failure = check_answer(QUESTION, answer, "stop")
    assert failure is not None and failure.reason == reason, failure


def test_the_length_cap_is_truncation():
    assert check_answer(QUESTION, "About 6.8 kilograms.", "length").reason == "truncated"


def test_json_in_english_is_not_wrong_language():
    """Issue #29 item 6: malformed JSON of English names and values got `wrong_language`; data is not prose."""
    import json

    answer = json.dumps(
        {
            "name": "Quarterly budget review",
            "owners": ["Alice Smith", "Bob Jones"],
            "items": ["hiring plan", "vendor contracts", "office lease", "travel policy", "cloud costs"],
            "status": "Pending approval",
        }
    )
    failure = check_answer("List the action items of these meeting notes as JSON.", answer, "stop")
    assert failure is None or failure.reason != "wrong_language", failure
    malformed = answer[:-2]  # cut: no longer valid JSON, still data
    failure = check_answer("List the action items of these meeting notes as JSON.", malformed, "stop")
    assert failure is None or failure.reason != "wrong_language", failure
    # prose with no English is still caught
    french = "Le chat noir dort sur le canapé pendant que la pluie tombe doucement dehors ce matin gris et froid."
    failure = check_answer("Describe the cat in one sentence, please.", french, "stop")
    assert failure is not None and failure.reason == "wrong_language"
