"""yamllint's style pass with its tokens read by libyaml (C) instead of PyYAML's pure-Python scanner.

Scanning is half of yamllint's time per file. libyaml's scanner yields the same tokens at the same
positions (tests/test_lint_speed_paths.py checks this on every corpus file), but its marks carry no
`buffer`/`pointer`, which yamllint's rules read; we swap in PyYAML marks that have them (pointer ==
libyaml's character index, buffer == the text plus the NUL PyYAML appends). yamllint's rules, directives and config are used unchanged.

Falls back to yamllint's own scanner when libyaml is missing, when yamllint's internals are not the
ones this was checked against, for text without a final newline (the end marks of the two scanners
differ there), for text with a tab (each scanner accepts tabs in places the other refuses) and whenever
libyaml stops with a scanner error.
"""

from __future__ import annotations

import contextlib

import yaml
from yaml.error import Mark


def _fill_marks(token, buffer: str) -> None:
    if token.start_mark.buffer is None:  # not yet converted (peeked tokens come round again)
        start, end = token.start_mark, token.end_mark
        token.start_mark = Mark(start.name, start.index, start.line, start.column, buffer, start.index)
        token.end_mark = Mark(end.name, end.index, end.line, end.column, buffer, end.index)
        if getattr(token, "style", None) == "":  # libyaml's plain scalar; PyYAML's (and yamllint's) is None
            token.style = None


class _LibyamlRefused(Exception):
    """libyaml stopped scanning; yamllint's scanner must decide where the tokens end."""


def token_or_comment_generator(buffer: str):
    """yamllint.parser.token_or_comment_generator, reading tokens with libyaml."""
    from yamllint.parser import Token, comments_between_tokens

    padded = buffer + "\0"
    loader = yaml.CBaseLoader(buffer)
    try:
        prev = None
        curr = loader.get_token()
        while curr is not None:
            _fill_marks(curr, padded)
            next_ = loader.get_token()
            nextnext = loader.peek_token() if loader.check_token() else None
            if next_ is not None:
                _fill_marks(next_, padded)
            if nextnext is not None:
                _fill_marks(nextnext, padded)
            yield Token(curr.start_mark.line + 1, curr, prev, next_, nextnext)
            yield from comments_between_tokens(curr, next_)
            prev, curr = curr, next_
    except yaml.scanner.ScannerError:
        raise _LibyamlRefused from None
    finally:
        loader.dispose()


# yamllint releases whose parser internals this module was checked against (pyproject bounds yamllint to
# them too): any other version takes yamllint's own scanner rather than risk shifted positions.
VERIFIED_YAMLLINT = ("1.35", "1.36", "1.37", "1.38")


def usable(text: str) -> bool:
    import yamllint
    from yamllint import parser

    return (
        ".".join(str(yamllint.__version__).split(".")[:2]) in VERIFIED_YAMLLINT
        and hasattr(yaml, "CBaseLoader")
        and callable(getattr(parser, "token_or_comment_generator", None))
        and hasattr(parser, "comments_between_tokens")
        and text.endswith("\n")
        and "\t" not in text
    )


@contextlib.contextmanager
def _libyaml_tokens():
    """Point yamllint's parser at the libyaml token source for the duration of one (single-threaded) call."""
    from yamllint import parser

    original = parser.token_or_comment_generator
    parser.token_or_comment_generator = token_or_comment_generator
    try:
        yield
    finally:
        parser.token_or_comment_generator = original


def cosmetic_problems(text: str, conf, path: str) -> list:
    """yamllint.linter.get_cosmetic_problems(text, conf, path), all of them, scanned by libyaml when usable."""
    from yamllint import linter

    if usable(text):
        try:
            with _libyaml_tokens():
                return list(linter.get_cosmetic_problems(text, conf, path))
        except _LibyamlRefused:
            pass
    return list(linter.get_cosmetic_problems(text, conf, path))
