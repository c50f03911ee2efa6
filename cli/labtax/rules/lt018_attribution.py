"""LT018 attribution: every leaf has a non-empty attribution.txt beside it."""

ID = "LT018"
NAME = "attribution"
LEVEL = "error"
SCOPE = "leaf"
SUMMARY = "An attribution.txt (title, link, license, creators of the source) sits beside each qna.yaml and is not empty."
WHY = "Seed material must be licensed for use; reviewers check the attribution before merging."
HINT = "add attribution.txt beside qna.yaml with 'Title of work', 'Link to work', 'License of the work', 'Creator names'"
DEFAULTS: dict = {}


def check(leaf, ctx):
    attribution = leaf.abs_path.parent / "attribution.txt"
    if not attribution.is_file():
        yield ctx.finding(leaf.path, 1, 1, "attribution.txt is missing beside this leaf")
    elif not attribution.read_text(encoding="utf-8", errors="replace").strip():
        yield ctx.finding(leaf.path, 1, 1, "attribution.txt beside this leaf is empty")
