"""LT014 word-limits: the size limits InstructLab documents but never checks."""

ID = "LT014"
NAME = "word-limits"
LEVEL = "error"
SCOPE = "leaf"
SUMMARY = "Knowledge contexts <= 500 words and each of their questions and answers <= 250 words (InstructLab's limits); a skill's seed examples <= 2300 words in all (a warning)."
WHY = "Seed examples go into the teacher's prompt; past these sizes they overflow its context and generation fails or degrades."
HINT = "shorten the text; split a long context into several seed examples"
DEFAULTS = {"context-words": 500, "qa-words": 250, "skill-total-words": 2300}


def _words(value) -> int:
    return len(value.split()) if isinstance(value, str) else 0


def check(leaf, ctx):
    limits = ctx.options
    if leaf.kind == "knowledge":
        for i, example in enumerate(leaf.seed_examples()):
            n = _words(example.get("context"))
            if n > limits["context-words"]:
                yield ctx.finding(
                    leaf.path,
                    *leaf.pos(("seed_examples", i, "context")),
                    f"context has {n} words; the limit is {limits['context-words']}",
                )
    for node_path, qa in (
        leaf.qa_pairs() if leaf.kind == "knowledge" else ()
    ):  # InstructLab's 250 is for knowledge Q&A only
        for field in ("question", "answer"):
            n = _words(qa.get(field))
            if n > limits["qa-words"]:
                yield ctx.finding(
                    leaf.path,
                    *leaf.pos(node_path + (field,)),
                    f"{field} has {n} words; the limit is {limits['qa-words']}",
                )
    if leaf.kind != "knowledge":
        total = sum(_words(e.get(f)) for e in leaf.seed_examples() for f in ("context", "question", "answer"))
        if total > limits["skill-total-words"]:
            # Not one of InstructLab's limits: advice (long seeds crowd the teacher's prompt), not an error.
            yield ctx.finding(
                leaf.path,
                *leaf.pos(("seed_examples",)),
                f"seed examples have {total} words in all; the advised limit is {limits['skill-total-words']}",
                level="warning",
            )
