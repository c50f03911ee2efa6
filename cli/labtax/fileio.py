"""Atomic writes: a crash or Ctrl-C never leaves a half-written file behind."""

from __future__ import annotations

import json
import os
import secrets
import stat
import sys
from pathlib import Path

from labtax.errors import LabtaxError

STDOUT = "-"


def check_replaceable(path: Path, what: str = "file", hint: str = "remove it or choose another path") -> None:
    """Refuse to rename over a symlink or a non-regular file: the rename would silently replace the link
    (or fail with a traceback on a device, FIFO or /proc entry). A regular file or nothing is fine."""
    path = Path(path)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise LabtaxError(f"cannot use {what} {path}: {exc.strerror}; {hint}") from None
    if stat.S_ISLNK(mode):
        target = os.readlink(path)
        raise LabtaxError(
            f"{what} {path} is a symlink (to {target}); labtax never writes through or replaces a symlink: {hint}"
        )
    if not stat.S_ISREG(mode):
        raise LabtaxError(f"{what} {path} is not a regular file ({_kind(mode)}): {hint}")


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a pipe"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "an unusual file type"


def _create_temp(folder: Path, name: str) -> tuple[int, Path]:
    """A new temp file beside the target, created with mode 0666 so the kernel applies the umask
    (tempfile.mkstemp's 0600 would make every output private, whatever the user's umask says)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        tmp = folder / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {folder}")  # pragma: no cover


def write_text_atomic(path: Path, text: str, *, durable: bool = True) -> None:
    """Write to a temp file, then rename over `path`. `durable=False` skips the fsync (milliseconds on ext4):
    the file still survives the process dying at any point, only not an OS crash (for caches that can
    treat a torn entry as missing). New files get 0666 minus the umask, like any other program's; a
    symlink or non-regular file at `path` is refused (LabtaxError), never replaced."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    check_replaceable(path)
    fd, tmp = _create_temp(path.parent, path.name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def check_output(path: Path | str, option: str = "--output") -> None:
    """Fail early, before the work, on an --output that write_output would refuse."""
    if str(path) != STDOUT:
        check_replaceable(Path(path), option, "pass a regular file (or the file a link points to), or '-' for stdout")


def write_output(path: Path | str, text: str, option: str = "--output") -> None:
    """A command's --output: '-' is stdout; otherwise an atomic write to a regular file (or a new one).

    Anything else (a symlink, a device such as /proc/self/fd/1, a FIFO, a folder, an unwritable place)
    is a usage error with a message, never a traceback.
    """
    if str(path) == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    path = Path(path)
    check_output(path, option)
    try:
        write_text_atomic(path, text)
    except LabtaxError:
        raise
    except OSError as exc:
        raise LabtaxError(
            f"cannot write {option} {path}: {exc.strerror or exc}; choose a file in a folder you can write to, or '-' for stdout"
        ) from None
