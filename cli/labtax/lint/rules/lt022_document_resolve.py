"""LT022 document-resolve: a knowledge leaf's documents can be had: the commit exists in the repository
and every pattern matches a readable Markdown, text or PDF file.

It needs the network (or documents already in the cache), so by default it runs where CI is set (CI=true,
as GitHub Actions sets it) and not in the pre-commit hook, which stays offline and fast; `labtax lint
--check-documents` / `--no-check-documents`, or `enabled = true|false` under [tool.labtax.lint.rules.LT022],
decide otherwise. A repository that cannot be reached is a warning saying the documents were not checked,
never an error.
"""

import os

ID = "LT022"
NAME = "document-resolve"
LEVEL = "error"
SCOPE = "leaf"
SUMMARY = "The documents' commit exists and every pattern matches a readable Markdown, text or PDF file (fetched with git; in CI or with --check-documents)."
WHY = "A knowledge leaf whose documents cannot be fetched or read gets no generated data at all."
HINT = "check document.repo, document.commit (a SHA in that repository) and document.patterns"
DEFAULTS: dict = {"enabled": "auto", "offline": False}


def enabled(options: dict) -> bool:
    value = options.get("enabled", "auto")
    if value == "auto":
        return os.environ.get("CI", "").lower() in ("1", "true", "yes")
    return bool(value)


def check(leaf, ctx):
    from labtax import documents
    from labtax.documents import fetch
    from labtax.documents.read import READABLE_SUFFIXES, ReadError, read

    document = leaf.data.get("document")
    if leaf.kind != "knowledge" or not isinstance(document, dict) or not enabled(ctx.options):
        return
    if (
        documents.is_local(document)
        or not isinstance(document.get("repo"), str)
        or not isinstance(document.get("commit"), str)
        or fetch.refusal(document["repo"])
    ):
        return  # in-repo documents and refused repositories: LT017; malformed fields: the schema (LT001)
    docs = documents.resolve(leaf.root, document, offline=bool(ctx.options.get("offline")))
    for problem in docs.problems:
        message = f"documents not checked: {problem.message}" if problem.unreachable else problem.message
        yield ctx.finding(leaf.path, *leaf.pos(problem.node), message, level="warning" if problem.unreachable else None)
    readable = 0
    for path, data in docs.files.items():
        if not path.lower().endswith(READABLE_SUFFIXES):
            yield ctx.finding(
                leaf.path,
                *leaf.pos(("document", "patterns")),
                f"{path} is not a Markdown, text or PDF document; it cannot be read",
                level="warning",
            )
            continue
        try:
            if any(section.text.strip() for section in read(path, data)):
                readable += 1
            else:
                yield ctx.finding(
                    leaf.path,
                    *leaf.pos(("document", "patterns")),
                    f"{path} has no text (a scanned PDF needs OCR first)",
                )
        except ReadError as exc:
            yield ctx.finding(leaf.path, *leaf.pos(("document", "patterns")), f"{path}: {exc}")
    if docs.files and not readable and not docs.problems:
        yield ctx.finding(leaf.path, *leaf.pos(("document", "patterns")), "no matched document has readable text")
