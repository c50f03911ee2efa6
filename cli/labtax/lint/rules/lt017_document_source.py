"""LT017 document-source: document.repo is a remote repository, or documents kept in this repository that
exist and match the patterns. Offline (a string check), so the pre-commit hook sees a refused repo too."""

from labtax import documents
from labtax.documents import fetch

ID = "LT017"
NAME = "document-source"
LEVEL = "error"
SCOPE = "leaf"
SUMMARY = "document.repo is a remote URL (https, ssh, git@host:path) or, for documents kept in this repository (repo: ./path), a folder inside it whose files match the patterns."
WHY = "Generation for a knowledge leaf is grounded in its documents; with none found it can produce nothing. A path to another repository on the machine would send its text to the teacher and the outputs."
HINT = "check the repo path (relative to the taxonomy root) and the patterns"
DEFAULTS: dict = {}


def check(leaf, ctx):
    document = leaf.data.get("document")
    if leaf.kind != "knowledge" or not isinstance(document, dict):
        return
    if isinstance(document.get("repo"), str) and not documents.is_local(document):
        refused = fetch.refusal(document["repo"])
        if refused:
            yield ctx.finding(
                leaf.path,
                *leaf.pos(("document", "repo")),
                refused,
                hint="use the documents repository's https:// or ssh URL, or keep the documents here (repo: ./path)",
            )
        return
    if not documents.is_local(document):
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
