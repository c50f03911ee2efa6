"""The one way labtax reads a file that came with a repository (a pull request's files are untrusted).

Guarantee: a read either returns at most `max_bytes` bytes of a regular file that lies inside the
taxonomy root, or raises LoadProblem saying why not. It never follows a link out of the root, never
loops on a symlink cycle, never blocks on a FIFO or device, and never reads an unbounded stream
(`/dev/zero`). Every caller (the loader, rules, `diff`, documents, config) goes through here.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from labtax.taxonomy.problems import LoadProblem


def resolve_inside(path: Path, root: Path) -> Path:
    """The real path of `path`, or LoadProblem if any link on the way leads out of `root` or loops."""
    real_root = os.path.realpath(root)
    try:
        real = os.path.realpath(path, strict=True)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LoadProblem(
                "unreadable", "symlink loop: the link points (through other links) back at itself"
            ) from None
        if os.path.islink(path) or not os.path.lexists(path):
            target = _link_target(path)
            raise LoadProblem(
                "unreadable",
                f"cannot read file: dangling symlink{target}"
                if os.path.islink(path)
                else "cannot read file: no such file",
            ) from None
        raise LoadProblem("unreadable", f"cannot read file: {exc.strerror or exc}") from None
    if os.path.commonpath([real, real_root]) != real_root:
        raise LoadProblem("symlink", f"symlink points outside the repository (to {real})")
    return Path(real)


def _link_target(path: Path) -> str:
    try:
        return f" (to {os.readlink(path)})"
    except OSError:
        return ""


def read_bytes(path: Path, root: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file inside `root`, refusing anything else before reading a byte of it."""
    return read_regular(resolve_inside(path, root), max_bytes)


def read_regular(real: Path, max_bytes: int) -> bytes:
    """The bytes of the regular file at `real` (links not followed), up to `max_bytes`: a device (/dev/zero),
    a FIFO or a folder is a LoadProblem before a byte is read, for files a user names as well as a repository's."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOFOLLOW: the path is already resolved,
        # so a link swapped in since then is refused rather than followed.
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LoadProblem("symlink", "file was replaced by a symlink while being read") from None
        raise LoadProblem("unreadable", f"cannot read file: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise LoadProblem("unreadable", f"not a regular file ({_kind(info.st_mode)}); only plain files are read")
        if info.st_size > max_bytes:
            raise LoadProblem("size", f"file is {info.st_size} bytes; the limit is {max_bytes}")
        chunks, total = [], 0
        while total <= max_bytes:  # the size can change after fstat: stop one byte past the limit
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            raise LoadProblem("size", f"file is over the limit of {max_bytes} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise LoadProblem("unreadable", f"cannot read file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a plain file"
