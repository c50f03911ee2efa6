"""Issue #29: the pipelines hold each leaf to its own format, and every rejection names what it rejected.

Leaves shaped like real InstructLab ones (../shared/corpus/instructlab-taxonomy/head): a grounded leaf whose
contexts are 3-5 word sentences (sentence negation), a maths leaf with two-word questions, an extraction leaf
whose instruction spans lines and ends in a quote, a grounded leaf whose seeds share one instruction and
differ by context (word counting). The fake teacher (tests/fake_openai.py) answers in the leaf's own format.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from labtax.generate import parse
from labtax.generate.gate.checks import check_answer
from labtax.generate.outcome import Reject

from .fake_openai import FakeOpenAI, Reply, good_teacher, stage_of
from .test_generate import generate, read_jsonl

NEGATION = "compositional_skills/grounded/linguistics/negation"
MATHS = "foundational_skills/reasoning/mathematical_reasoning/arithmetic"
EXTRACTION = "compositional_skills/extraction/emotions"
COUNTING = "compositional_skills/grounded/linguistics/word_count"

LEAVES: dict[str, dict] = {
    NEGATION: {
        "task_description": "Negate the given sentence.",
        "seed_examples": [
            {"context": "The cat is black.", "question": "Negate this sentence.", "answer": "The cat is not black."},
            {"context": "I like tea.", "question": "Write the negation.", "answer": "I do not like tea."},
            {"context": "She runs fast.", "question": "Negate it.", "answer": "She does not run fast."},
            {"context": "We are home.", "question": "Make it negative.", "answer": "We are not home."},
            {"context": "The sun rises early.", "question": "Negate the text.", "answer": "The sun does not rise."},
        ],
    },
    MATHS: {
        "task_description": "Evaluate arithmetic expressions with the order of operations.",
        "seed_examples": [
            {"question": "Solve 2+14*(7-9)", "answer": "14*(7-9) = -28, so 2 + (-28) = -26."},
            {"question": "Compute 3*(4+5)", "answer": "4+5 = 9, so 3*9 = 27."},
            {"question": "Evaluate 10-2*3", "answer": "2*3 = 6, so 10-6 = 4."},
            {"question": "Solve (8-3)*2", "answer": "8-3 = 5, so 5*2 = 10."},
            {"question": "Compute 6/2+1", "answer": "6/2 = 3, so 3+1 = 4."},
        ],
    },
    EXTRACTION: {
        "task_description": "Extract the given emotions from a text.",
        "seed_examples": [
            {
                "question": 'Find these emotions in "I was scared but then happy.":\n"fear"\n"joy"',
                "answer": "fear: scared\njoy: happy",
            },
            {
                "question": 'Find these emotions in "He shouted in rage, then wept.":\n"anger"\n"sadness"',
                "answer": "anger: shouted in rage\nsadness: wept",
            },
            {
                "question": 'Find these emotions in "What a lovely surprise!":\n"surprise"\n"joy"',
                "answer": "surprise: surprise\njoy: lovely",
            },
            {
                "question": 'Find these emotions in "The smell made me gag.":\n"disgust"',
                "answer": "disgust: made me gag",
            },
            {
                "question": 'Find these emotions in "I dread the exam but I am calm.":\n"fear"\n"calm"',
                "answer": "fear: dread\ncalm: I am calm",
            },
        ],
    },
    COUNTING: {
        "task_description": "Count the words of a text.",
        "seed_examples": [
            {
                "context": f"The {a} walked along the {b} before the rain came down on the quiet town.",
                "question": "Count the number of words in the following text",
                "answer": "The text has 16 words.",
            }
            for a, b in [("dog", "river"), ("man", "road"), ("girl", "beach"), ("cat", "wall"), ("boy", "hill")]
        ],
    },
}


ATTRIBUTION = """Title of work: {path} test seeds
Link to work: {path}/qna.yaml (written for labtax's tests)
Revision: 1
License of the work: Apache-2.0
Creator names: labtax contributors
"""


def make_leaves(root: Path, *paths: str, **changes: dict) -> Path:
    for path in paths:
        leaf = {"version": 3, "created_by": "labtax", **LEAVES[path], **changes.get(path, {})}
        folder = root / path
        folder.mkdir(parents=True)
        (folder / "qna.yaml").write_text(yaml.safe_dump(leaf, sort_keys=False, allow_unicode=True), encoding="utf-8")
        (folder / "attribution.txt").write_text(ATTRIBUTION.format(path=path), encoding="utf-8")
    return root


def scripted(**by_stage):
    """The good teacher, except at the named stages: a reply, or a function of (request, seed) giving one."""

    def responder(request):
        stage = stage_of(request)
        if stage in by_stage:
            reply = by_stage[stage]
            reply = reply(request, request.get("seed") or 0) if callable(reply) else reply
            return reply if isinstance(reply, Reply) else Reply(reply)
        return good_teacher(request)

    return responder


def run(tmp_path: Path, leaf: str, responder, n: int = 3, max_attempts: int = 2, **changes):
    root = make_leaves(tmp_path / "tax", leaf, **changes)
    out = tmp_path / "gen"
    with FakeOpenAI(responder=responder) as fake:
        summary = generate(root, fake, out, n=n, max_attempts=max_attempts)
        requests = list(fake.requests)
    folder = out / leaf
    return (
        summary["leaves"][f"{leaf}/qna.yaml"],
        read_jsonl(folder / "samples.jsonl"),
        read_jsonl(folder / "rejected.jsonl"),
        requests,
    )


# 1. contexts as short as the leaf's own


def test_short_contexts_like_the_leafs_own_are_kept(tmp_path):
    sentences = ["The dog is not asleep.", "Birds sing at dawn.", "He reads books daily."]
    leaf, samples, rejected, _ = run(
        tmp_path, NEGATION, scripted(context=lambda r, seed: sentences[seed % 3], question="Negate this sentence.")
    )
    assert leaf["accepted"] == 3, rejected
    assert sorted(s["provenance"]["context"] for s in samples) == sorted(sentences)


def test_a_context_far_shorter_than_the_leafs_is_still_rejected(tmp_path):
    # the leaf's shortest seed context has 16 words: a one-word one is no text of this kind
    leaf, _, rejected, _ = run(tmp_path, COUNTING, scripted(context="Dogs."), n=1, max_attempts=1)
    assert leaf["accepted"] == 0 and [r["reason"] for r in rejected] == ["parse_failure"]
    assert "1 word" in rejected[0]["detail"] and "shortest seed context" in rejected[0]["detail"]


# 2. questions as short as the leaf's own


def test_two_word_maths_questions_are_kept(tmp_path):
    questions = ["Solve 5*(2+3)", "Compute 9-4*2", "Evaluate (6+1)*3"]
    leaf, samples, rejected, _ = run(
        tmp_path, MATHS, scripted(question=lambda r, seed: questions[seed % 3], answer="The result is 25.")
    )
    assert leaf["accepted"] == 3, rejected
    assert sorted(s["messages"][1]["content"] for s in samples) == sorted(questions)


# 3. multi-line instructions parsed whole, quoting untouched


def test_multi_line_instructions_keep_every_line_and_their_quotes(tmp_path):
    question = 'Find these emotions in "I was so afraid, then relieved.":\n"fear"\n"relief"'
    leaf, samples, rejected, _ = run(
        tmp_path, EXTRACTION, scripted(question=question, answer="fear: so afraid\nrelief: relieved"), n=1
    )
    assert leaf["accepted"] == 1, rejected
    assert samples[0]["messages"][1]["content"] == question


def test_question_parser_keeps_the_reply_whole():
    assert parse.question('Task: List the emotions:\n"fear"\n"joy"\n\nAnswer: fear, joy', "question") == (
        'List the emotions:\n"fear"\n"joy"'
    )
    assert parse.question('What does "fear" mean?', "question") == 'What does "fear" mean?'
    assert parse.question('Name the feeling in "fear"', "question") == 'Name the feeling in "fear"'
    # options lettered A. B. C. are part of the question, not an answer label
    odd = "Which word is the odd one out?\nA. trivial\nB. unimportant\nC. important"
    assert parse.question(odd, "question") == odd
    # a numbered list of several tasks: the first one, all its lines
    assert parse.question("1. Sum these:\n3 4 5\n2. Multiply these:\n2 3", "question") == "Sum these:\n3 4 5"


def test_knowledge_question_parser_keeps_multi_line_questions_whole():
    text = 'Question: What are fans known as\n"the best online sleuths?"\nAnswer: Swifties.'
    assert parse.question_answer(text, "stop", "qa") == (
        'What are fans known as\n"the best online sleuths?"',
        "Swifties.",
    )


# 4. dedup compares what makes a sample distinct


def test_shared_instruction_with_new_contexts_is_no_duplicate(tmp_path):
    texts = [
        "Rain fell on the harbour all night, and by morning the fishing boats had stayed tied to the pier.",
        "Our team shipped the new billing page on Friday after two weeks of testing with real customers.",
        "Bees visit thousands of flowers a day, carrying pollen between plants as they collect nectar.",
    ]

    def context(request, seed):
        return texts[seed % 3]

    leaf, samples, rejected, _ = run(
        tmp_path,
        COUNTING,
        scripted(context=context, question="Count the number of words in the following text"),
    )
    assert leaf["accepted"] == 3, rejected
    assert {s["messages"][1]["content"].rsplit("\n\n", 1)[1] for s in samples} == {
        "Count the number of words in the following text"
    }


def test_same_instruction_on_the_same_context_is_a_duplicate_and_keeps_its_context(tmp_path):
    context = "A fox ran across the field and into the dark woods beyond the old stone farmhouse wall."
    leaf, _, rejected, _ = run(
        tmp_path,
        COUNTING,
        scripted(context=context, question="Count the number of words in the following text"),
        n=2,
        max_attempts=1,
    )
    assert leaf["accepted"] == 1
    assert [r["reason"] for r in rejected] == ["duplicate"]
    assert rejected[0]["candidate"]["context"] == context
    assert rejected[0]["candidate"]["question"] == "Count the number of words in the following text"


# 5. a context cut at the length cap is truncated, and the cap fits the leaf's contexts


def test_context_cut_at_the_cap_is_truncated_not_too_short(tmp_path):
    cut = "The quarterly meeting opened with a long review of the budget and the team kept talking about"
    _, _, rejected, _ = run(
        tmp_path, COUNTING, scripted(context=Reply(cut, finish_reason="length")), n=1, max_attempts=1
    )
    assert [r["reason"] for r in rejected] == ["truncated"]
    assert "length cap" in rejected[0]["detail"]


def test_context_cap_is_sized_from_the_leafs_seed_contexts(tmp_path):
    long = " ".join(["The committee reviewed every line of the annual report before the vote."] * 25)  # 300 words
    seeds = [dict(example, context=f"{long} Seed {n}.") for n, example in enumerate(LEAVES[COUNTING]["seed_examples"])]
    _, _, _, requests = run(
        tmp_path, COUNTING, good_teacher, n=1, max_attempts=1, **{COUNTING: {"seed_examples": seeds}}
    )
    caps = {r["max_tokens"] for r in requests if stage_of(r) == "context"}
    # room for a context as long as the leaf's own (at 4 characters a token) and a quarter more; 200 before
    assert caps and min(caps) * 4 >= 1.25 * len(long) and min(caps) > 200


# 6. a rejection keeps the whole candidate and names what was checked


def test_judge_parse_failure_keeps_the_candidate_it_judged(tmp_path):
    _, _, rejected, _ = run(
        tmp_path,
        COUNTING,
        scripted(
            context="A fox ran across the field and into the dark woods beyond the old stone farmhouse wall.",
            question="Count the number of words in the following text",
            answer="The text has 17 words.",
            judge_pair="20",
        ),
        n=1,
        max_attempts=1,
    )
    [record] = rejected
    assert (record["stage"], record["reason"]) == ("judge_pair", "parse_failure")
    assert record["candidate"] == {
        "question": "Count the number of words in the following text",
        "answer": "The text has 17 words.",
        "context": "A fox ran across the field and into the dark woods beyond the old stone farmhouse wall.",
        "raw": "20",
    }
    assert "judge" in record["detail"] and "1, 2, 3" in record["detail"]


def test_question_parse_failure_keeps_the_context_it_was_about(tmp_path):
    context = "A fox ran across the field and into the dark woods beyond the old stone farmhouse wall."
    _, _, rejected, _ = run(tmp_path, COUNTING, scripted(context=context, question="?"), n=1, max_attempts=1)
    [record] = rejected
    assert record["reason"] == "parse_failure" and record["candidate"]["context"] == context
    assert record["candidate"]["raw"] == "?"


# 7. what the judge says is not a reason


def test_a_one_digit_judge_reply_is_a_score_not_a_reason(tmp_path):
    leaf, samples, rejected, _ = run(
        tmp_path, MATHS, scripted(question="Solve 5*(2+3)", answer="2+3 = 5, so 5*5 = 25."), n=1
    )
    assert leaf["accepted"] == 1, rejected
    criteria = {c["name"]: c for c in samples[0]["judge"]["criteria"]}
    assert criteria["pair"]["score"] == 3 and criteria["pair"]["reason"] == ""
    assert criteria["question"]["reason"] == ""


def test_a_judge_reply_with_words_is_kept_as_its_reason():
    from labtax.generate.pipelines.common import judge_reason

    assert judge_reason("3", 3) == "" and judge_reason(" 3.\n", 3) == ""
    assert judge_reason("3 - the answer uses the text", 3) == "3 - the answer uses the text"


def test_the_comment_never_marks_a_leaf_ok_on_the_judges_score_alone():
    from labtax.comment.verdicts import OK, leaf_status

    scored_only = {"requested": 4, "accepted": 4, "rejected": {}}
    assert leaf_status(scored_only) != OK
    uncalibrated = {
        **scored_only,
        "gate": {"good_accepted": 0, "good_total": 0, "bad_rejected": 0, "bad_total": 0, "separates": None},
    }
    assert leaf_status(uncalibrated) != OK
    vetted = {
        **scored_only,
        "gate": {"good_accepted": 1, "good_total": 1, "bad_rejected": 3, "bad_total": 3, "separates": True},
    }
    assert leaf_status(vetted) == OK


def test_parse_rejections_name_the_reply():
    try:
        parse.score("20", "judge_pair")
    except Reject as reject:
        assert reject.reply == "20"
    else:
        raise AssertionError("20 is no score")


# Done-when: no rejection caused by a leaf's own format over the real InstructLab leaves


def _parsed(function, *args, **kwargs):
    """What a parser makes of a seed: its result, or the Reject."""
    try:
        return function(*args, **kwargs)
    except Reject as reject:
        return reject


def test_every_seed_of_the_instructlab_leaves_passes_the_rules_it_would_be_held_to(corpus):
    """Every seed question, context and answer of every leaf of the InstructLab taxonomy passes, unaltered, the
    parser, the length rules and the cheap checks its leaf's candidates are held to, and fits its stage's cap."""
    from labtax.generate import seeds
    from labtax.generate.pipelines import pipeline_for
    from labtax.generate.pipelines.prompts import load as load_prompts
    from labtax.taxonomy.loader import load_leaf
    from labtax.taxonomy.paths import tree_files

    root = corpus / "head"
    failures, checked = [], 0
    leaves = [load_leaf(root, rel) for rel in tree_files(root) if rel.endswith("qna.yaml")]
    assert len(leaves) >= 16
    for leaf in leaves:
        items = seeds.qa_items(leaf)
        shape = seeds.LeafShape.of(items)
        prompts = load_prompts(pipeline_for(leaf).PROMPTS)
        caps = shape.max_tokens({name: stage.max_tokens for name, stage in prompts.stages.items()})
        for item in items:
            checked += 1
            q, a, context = item["question"], item["answer"], item.get("context", "")
            if leaf.kind == "knowledge":
                parsed = {
                    "qa": (_parsed(parse.question_answer, f"Question: {q}\nAnswer: {a}", "stop", "qa", shape), (q, a))
                }
                need = {"qa": len(q) + len(a)}
            else:
                parsed = {
                    "question": (_parsed(parse.question, q, "question", shape=shape), q),
                    "answer": (_parsed(parse.answer, a, "stop", "answer"), a),
                }
                need = {"question": len(q), "answer": len(a)}
                if context:
                    parsed["context"] = (_parsed(parse.context, context, "stop", "context", shape), context)
                    need["context"] = len(context)
            for what, (got, expected) in parsed.items():
                if got != expected:
                    failures.append((leaf.path, what, repr(got)[:200], q[:60]))
            failure = check_answer(q, a, "stop", max_words=shape.max_answer_words)
            if failure is not None:
                failures.append((leaf.path, "checks", failure.reason, failure.detail, q[:60]))
            for stage, chars in need.items():  # a seed-sized reply fits its stage's cap at 4 characters a token
                if chars / 4 > caps[stage]:
                    failures.append((leaf.path, "cap", stage, f"{chars} characters > {caps[stage]} tokens", q[:60]))
    assert checked >= 90 and not failures, failures
