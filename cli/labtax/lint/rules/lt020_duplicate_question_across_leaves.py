"""LT020 duplicate-question-across-leaves: a question is not also a seed of another leaf."""

from labtax.taxonomy.textnorm import normalize

ID = "LT020"
NAME = "duplicate-question-across-leaves"
LEVEL = "warning"
SCOPE = "tree"
SUMMARY = (
    "No question is also a seed question of another leaf among those linted (the whole tree when no paths are given)."
)
WHY = "The same seed in two leaves usually means a copy-pasted leaf; the data it generates is duplicated too."
HINT = "keep the question in the leaf it belongs to"
DEFAULTS: dict = {}


def check_tree(leaves, ctx):
    owner: dict[str, tuple] = {}
    for leaf in sorted(leaves, key=lambda leaf: leaf.path):
        for node_path, qa in leaf.qa_pairs():
            key = normalize(qa.get("question"))
            if not key:
                continue
            if key in owner and owner[key][0].path != leaf.path:
                other, other_path = owner[key]
                line, _ = other.pos(other_path + ("question",))
                yield ctx.finding(
                    leaf.path, *leaf.pos(node_path + ("question",)), f"question is also in {other.path}:{line}"
                )
            else:
                owner.setdefault(key, (leaf, node_path))
