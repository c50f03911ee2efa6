"""LT018 attribution: every leaf has a non-empty attribution.txt beside it."""

ID = "LT018"
NAME = "attribution"
LEVEL = "error"
SCOPE = "leaf"
SUMMARY = "An attribution.txt (title, link, license, creators of the source) sits beside each qna.yaml and is not empty (an error on compositional and knowledge leaves of version 2+, where InstructLab requires it; advice elsewhere)."
WHY = "Seed material must be licensed for use; reviewers check the attribution before merging."
HINT = (
    "add attribution.txt beside qna.yaml with 'Title of work', 'Link to work', 'License of the work', 'Creator names'"
)
DEFAULTS: dict = {}
MAX_BYTES = 1024 * 1024


def _required(leaf) -> bool:
    """InstructLab never asked foundational leaves or version-1 files for attribution.txt."""
    return leaf.kind != "foundational" and leaf.version >= 2


def check(leaf, ctx):
    from labtax.taxonomy.files import read_bytes
    from labtax.taxonomy.problems import LoadProblem

    level, advice = (
        (None, "") if _required(leaf) else ("warning", " (advised; InstructLab does not require it for this leaf)")
    )
    attribution = leaf.abs_path.parent / "attribution.txt"
    if not (attribution.exists() or attribution.is_symlink()):
        yield ctx.finding(leaf.path, 1, 1, "attribution.txt is missing beside this leaf" + advice, level=level)
        return
    try:
        text = read_bytes(attribution, leaf.root, MAX_BYTES).decode("utf-8", errors="replace")
    except LoadProblem as problem:
        yield ctx.finding(
            leaf.path,
            1,
            1,
            f"attribution.txt beside this leaf cannot be read: {problem.message}",
            hint="make attribution.txt a plain text file",
        )
        return
    if not text.strip():
        yield ctx.finding(leaf.path, 1, 1, "attribution.txt beside this leaf is empty" + advice, level=level)
