"""LT017 document-source: documents kept in this repository exist and match the patterns."""

from labtax import documents

ID = "LT017"
NAME = "document-source"
LEVEL = "error"
SCOPE = "leaf"
SUMMARY = "For documents kept in this repository (repo: ./path), the folder exists inside the repository and the patterns match at least one file."
WHY = "Generation for a knowledge leaf is grounded in its documents; with none found it can produce nothing."
HINT = "check the repo path (relative to the taxonomy root) and the patterns"
DEFAULTS: dict = {}


def check(leaf, ctx):
    document = leaf.data.get("document")
    if leaf.kind != "knowledge" or not isinstance(document, dict) or not documents.is_local(document):
        return
    folder = documents.local_folder(leaf.root, document)
    if not folder.is_relative_to(leaf.root.resolve()):
        yield ctx.finding(
            leaf.path,
            *leaf.pos(("document", "repo")),
            f"documents folder '{document['repo']}' is outside the repository",
        )
    elif not folder.is_dir():
        yield ctx.finding(
            leaf.path, *leaf.pos(("document", "repo")), f"documents folder '{document['repo']}' does not exist"
        )
    else:
        scan = documents.scan_local(leaf.root, document)
        for problem in scan.problems:
            yield ctx.finding(
                leaf.path,
                *leaf.pos(("document", "patterns")),
                problem,
                hint="documents must be plain files inside the documents folder; replace links with the files themselves",
            )
        if not scan.files:
            yield ctx.finding(
                leaf.path, *leaf.pos(("document", "patterns")), f"no file in '{document['repo']}' matches the patterns"
            )
