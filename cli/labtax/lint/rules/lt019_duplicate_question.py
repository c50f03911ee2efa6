"""LT019 duplicate-question: a question appears only once within a leaf."""

from labtax.taxonomy.textnorm import normalize

ID = "LT019"
NAME = "duplicate-question"
LEVEL = "warning"
SCOPE = "leaf"
SUMMARY = "No seed repeats within a leaf: the same question about the same context (compared ignoring case, spacing and punctuation)."
WHY = "Repeated seeds waste the teacher's prompt budget and skew generated data towards one question."
HINT = "make the questions different or drop the repeat"
DEFAULTS: dict = {}


def check(leaf, ctx):
    first_seen: dict[tuple, tuple] = {}
    for node_path, qa in leaf.qa_pairs():
        question = normalize(qa.get("question"))
        if not question:
            continue
        # Grounded skills ask one question of different contexts on purpose; knowledge contexts hold the Q&A.
        context = (
            qa.get("context") if leaf.kind != "knowledge" else leaf.data["seed_examples"][node_path[1]].get("context")
        )
        key = (normalize(context), question)
        if key in first_seen:
            line, _ = leaf.pos(first_seen[key] + ("question",))
            yield ctx.finding(
                leaf.path, *leaf.pos(node_path + ("question",)), f"question repeats the one at line {line}"
            )
        else:
            first_seen[key] = node_path
