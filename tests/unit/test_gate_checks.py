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


# --------------------------------------------------------------------------- the teacher's own failures
# The bad texts are the embedded teacher's, from bench/graded/candidates.jsonl and a `make demo` run; the good
# ones are people's seeds from InstructLab's taxonomy that an earlier, broader version of a check rejected.

from labtax.generate.gate.checks import LeafChecks, check_question  # noqa: E402
from labtax.generate.pipelines import prompts  # noqa: E402


def _freeform(own: list[str], seeds: list[dict] = ()) -> LeafChecks:
    stages = prompts.load("skill_freeform").stages.values()
    texts = [t for s in stages for t in (s.system, s.user, s.example_user or "")]
    return LeafChecks.of(texts, own, list(seeds))


def test_a_task_that_repeats_the_generation_prompt_is_a_leak():
    leaf = _freeform(["Rewrite legal text in plain language."])
    leaked = 'Write one new task for this skill: "The use of the provided product is prohibited."'
    assert check_question(leaked, leaf).reason == "prompt_leak"
    assert check_question('Rewrite in plain language: "The tenant shall remit payment forthwith."', leaf) is None


def test_the_prompts_wording_is_not_a_leak_where_the_leaf_itself_uses_it():
    leaf = _freeform(["Write one new task for this skill, then solve it."])
    assert check_question("Write one new task for this skill, then solve it: sort 3, 1, 2.", leaf) is None


@pytest.mark.parametrize(
    "question",
    [
        "Rewrite in plain language: \"The defendant shall appear before the court on the defendant's",
        "Write an email to all staff on the Q4 results. Revenue was $3.2M, up from $2.9M, and the",
    ],
)
def test_a_task_cut_mid_sentence_is_truncated(question):
    assert check_question(question).reason == "truncated"


def test_a_stray_quote_in_a_finished_question_is_not_a_cut():
    question = 'What do all of the heading "GP", "W", D", and "L" stand for in this document?'  # a seed's typo
    assert check_question(question) is None


def test_an_answer_that_hands_the_input_back_copies_it():
    question = 'Rewrite in plain language: "The use of the provided product is prohibited and will be terminated\nimmediately upon publication."'
    answer = "The use of the provided product is prohibited and will be terminated immediately upon publication."
    assert check_answer(question, answer, "stop").reason == "copies_input"


def test_a_rewrite_that_changes_anything_is_not_a_copy():
    question = "Update this markdown document by changing headers from level 2 to level 3.\n\n## Setup\nInstall the tool with pip and run it once."
    answer = "### Setup\nInstall the tool with pip and run it once."
    assert check_answer(question, answer, "stop") is None


def test_an_unchanged_answer_is_allowed_where_the_leafs_own_seeds_do_it():
    seed = {
        "question": "Convert instances of 12 hour time to 24 hour time: Company meeting will start at 10:30 in the morning, so be on time.",
        "answer": "Company meeting will start at 10:30 in the morning, so be on time.",
    }
    leaf = _freeform([], [seed])
    assert leaf.copies_allowed
    q, a = seed["question"], seed["answer"]
    assert check_answer(q, a, "stop", leaf=leaf) is None
    assert check_answer(q, a, "stop").reason == "copies_input"


@pytest.mark.parametrize("answer", ["Yes, I can.", "Sure, here it is:", "I can do that."])
def test_an_answer_that_only_talks_about_answering_is_a_non_answer(answer):
    assert check_answer("Can you put these five events in order?", answer, "stop").reason == "non_answer"


@pytest.mark.parametrize(
    "question,answer",
    [
        ("Is the Great Red Spot larger than Earth?", "Yes."),
        ("Classify below query as Finance, Sport, Politics or Other: who won the 2011 cup?", "Sport"),
        ("Who created IBM Granite model", "IBM Granite model was created by IBM"),
    ],
)
def test_short_answers_from_peoples_seeds_are_answers(question, answer):
    assert check_answer(question, answer, "stop") is None


@pytest.mark.parametrize(
    "answer",
    [
        "The man gave the woman two balls. The total cost would be 8 * $2 + 4 = $16.",
        "10 pounds = 2.45 kg, so 16 × 2.45 = 36 kilograms.",
        "15 kg = 2 × 2.083 ≈ 4.9 pounds",
    ],
)
def test_an_equation_that_does_not_hold_is_wrong_arithmetic(answer):
    assert check_answer("How heavy is it?", answer, "stop").reason == "wrong_arithmetic"


@pytest.mark.parametrize(
    "answer",
    [
        "°C = (°F - 32) × 5/9, so (72 - 32) × 5/9 = 40 × 5/9 = 22.22.",  # a chain: "= 40" starts the next step
        "Fencing: 2 × (12 + 8) = 40 m, so 40 × $5 = $200.",
        "15 × 2.2046 ≈ 33.07 pounds; 1,200 + 300 = 1,500; -5 + 3 = -2",
        "The ratio 16:9 = 1.78, and 2^3 = 8.",
    ],
)
def test_equations_that_hold_or_are_not_plain_arithmetic_pass(answer):
    assert check_answer("How much?", answer, "stop") is None
