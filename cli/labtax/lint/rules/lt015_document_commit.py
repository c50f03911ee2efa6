"""LT015 document-commit: a knowledge document's commit is a full 40-hex SHA."""

import re

from labtax import documents

ID = "LT015"
NAME = "document-commit"
LEVEL = "warning"  # a short SHA or a branch still resolves (the full SHA goes into provenance): advice
SCOPE = "leaf"
SUMMARY = "document.commit is a full 40-character hex SHA (or HEAD for documents kept in this repository)."
WHY = "A short SHA can become ambiguous and a branch name can point at different content tomorrow; the data must be reproducible."
HINT = "use the full SHA: git rev-parse <commit> in the documents repository"
DEFAULTS: dict = {}
FULL_SHA = re.compile(r"[0-9a-f]{40}")


def check(leaf, ctx):
    document = leaf.data.get("document")
    if leaf.kind != "knowledge" or not isinstance(document, dict) or not isinstance(document.get("commit"), str):
        return
    commit = document["commit"]
    if documents.is_local(document):
        if commit != documents.LOCAL_COMMIT:
            yield ctx.finding(
                leaf.path,
                *leaf.pos(("document", "commit")),
                f"documents in this repository use commit '{documents.LOCAL_COMMIT}', found '{commit}'",
                f"set commit: {documents.LOCAL_COMMIT}",
            )
    elif not FULL_SHA.fullmatch(commit):
        yield ctx.finding(
            leaf.path,
            *leaf.pos(("document", "commit")),
            f"commit '{commit}' is not a full 40-character lowercase hex SHA",
        )
