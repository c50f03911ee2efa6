"""Read one qna.yaml safely, keeping the line/column of every node.

Everything a hostile or broken file can do (binary content, bad encoding, huge size, a symlink out of
the repository, YAML alias bombs, duplicate keys, syntax errors) becomes a LoadProblem with a location,
never an exception escaping to the user.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from labtax.taxonomy import files
from labtax.taxonomy.kinds import kind_of
from labtax.taxonomy.leaf import Leaf
from labtax.taxonomy.problems import LoadProblem

__all__ = ["LoadLimits", "LoadProblem", "document_version", "load_leaf", "parse_text", "read_text"]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MERGE_TAG = "tag:yaml.org,2002:merge"
_OPENED = re.compile(r"quoted scalar|flow sequence|flow mapping")
DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_MAX_NODES = 100_000


@dataclass
class LoadLimits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_nodes: int = DEFAULT_MAX_NODES
    duplicate_keys_fatal: bool = True  # the instructlab profile lets yamllint report them instead


def _position_of_byte(raw: bytes, offset: int) -> tuple[int, int]:
    line = raw.count(b"\n", 0, offset) + 1
    col = offset - (raw.rfind(b"\n", 0, offset) + 1) + 1
    return line, col


def _position_of_char(text: str, offset: int, *, byte_offset: bool) -> tuple[int, int]:
    """Line/column (in characters) of an offset; libyaml counts it in UTF-8 bytes, PyYAML in characters."""
    prefix = text.encode("utf-8")[:offset].decode("utf-8", errors="ignore") if byte_offset else text[:offset]
    return prefix.count("\n") + 1, len(prefix) - (prefix.rfind("\n") + 1) + 1


_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32 LE"),
    (b"\x00\x00\xfe\xff", "UTF-32 BE"),
    (b"\xff\xfe", "UTF-16 LE"),
    (b"\xfe\xff", "UTF-16 BE"),
)


def read_text(path: Path, root: Path, limits: LoadLimits) -> str:
    """The file's text, or a LoadProblem saying why it is not a readable UTF-8 text file."""
    raw = files.read_bytes(path, root, limits.max_bytes)
    for bom, encoding in _BOMS:  # before the NUL check: UTF-16 text is full of NULs but is not binary
        if raw.startswith(bom):
            raise LoadProblem(
                "encoding",
                f"file is {encoding} (byte order mark {bom.hex(' ').upper()}); YAML leaves must be UTF-8: re-save it as UTF-8",
            )
    if b"\0" in raw[:8192]:
        line, col = _position_of_byte(raw, raw.index(b"\0"))
        raise LoadProblem("binary", "file is binary (contains NUL bytes), not YAML text", line, col)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _position_of_byte(raw, exc.start)
        raise LoadProblem("encoding", f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})", line, col) from None
    return text.removeprefix("\ufeff")


class _Builder:
    """Turns a composed YAML node graph into Python data plus a position table.

    Building from nodes (instead of yaml.safe_load) lets us record where each value is, refuse
    duplicate keys, and bound alias expansion before it can eat memory.
    """

    def __init__(self, loader, limits: LoadLimits):
        self.loader = loader
        self.limits = limits
        self.nodes = 0
        self.positions: dict = {}
        self.key_positions: dict = {}
        self.seen: set[int] = set()  # ids of nodes built once; meeting one again means an alias

    def build(self, node, path: tuple, via_alias=None):
        self.nodes += 1
        if via_alias is None and id(node) in self.seen:
            # An aliased node's own mark is its anchor; the place that expands it is the container holding the alias.
            via_alias = self.positions.get(path[:-1])
        self.seen.add(id(node))
        if self.nodes > self.limits.max_nodes:
            line, col = via_alias or (node.start_mark.line + 1, node.start_mark.column + 1)
            raise LoadProblem(
                "alias-expansion",
                f"document expands to more than {self.limits.max_nodes} nodes (YAML alias bomb?)",
                line,
                col,
            )
        self.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict = {}
            merges = []
            for key_node, value_node in node.value:
                if key_node.tag == MERGE_TAG:  # `<<: *anchor` (or a list of them), as yaml.safe_load merges
                    merges.append(value_node)
                    continue
                key = self.build_key(key_node)
                if key in out and self.limits.duplicate_keys_fatal:
                    raise LoadProblem(
                        "duplicate-key",
                        f"duplicate key '{key}'",
                        key_node.start_mark.line + 1,
                        key_node.start_mark.column + 1,
                    )
                self.key_positions[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                out[key] = self.build(value_node, path + (key,), via_alias)
            for value_node in merges:
                self.merge(out, value_node, path, via_alias)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,), via_alias) for i, item in enumerate(node.value)]
        return self.loader.construct_object(node)

    def merge(self, out: dict, value_node, path: tuple, via_alias) -> None:
        """Keys of merged mappings that the mapping does not set itself; earlier sources win (YAML 1.1 merge)."""
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                raise LoadProblem(
                    "syntax",
                    "a merge key (<<) takes a mapping or a list of mappings",
                    source.start_mark.line + 1,
                    source.start_mark.column + 1,
                )
            line, col = value_node.start_mark.line + 1, value_node.start_mark.column + 1
            merged = self.build(source, path + ("<<",), via_alias or (line, col))
            for key, value in merged.items():
                if key not in out:
                    out[key] = value
                    self.positions[path + (key,)] = self.positions.get(path + ("<<", key), (line, col))
                    self.key_positions[path + (key,)] = self.key_positions.get(path + ("<<", key), (line, col))

    def build_key(self, node):
        if not isinstance(node, yaml.ScalarNode):
            raise LoadProblem(
                "syntax", "mapping keys must be plain scalars", node.start_mark.line + 1, node.start_mark.column + 1
            )
        return self.loader.construct_object(node)


def parse_text(text: str, limits: LoadLimits) -> tuple[object, dict, dict]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}, {}
        builder = _Builder(loader, limits)
        return builder.build(node, ()), builder.positions, builder.key_positions
    except yaml.reader.ReaderError as exc:
        line, col = _position_of_char(text, exc.position, byte_offset=_Loader is not yaml.SafeLoader)
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)  # libyaml: int; PyYAML: str
        raise LoadProblem(
            "syntax", f"YAML error: character U+{code:04X} is not allowed in YAML ({exc.reason})", line, col
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        context = f" ({exc.context})" if exc.context else ""
        if (
            exc.context_mark
            and exc.problem_mark
            and exc.context
            and _OPENED.search(exc.context)
            and exc.context_mark.line != exc.problem_mark.line
        ):
            # An unclosed quote or bracket breaks far away (often at the end of the file): point where it opens.
            opened = (exc.context_mark.line + 1, exc.context_mark.column + 1)
            raise LoadProblem(
                "syntax",
                f"YAML syntax error: {exc.problem}{context} that starts here; it breaks at line {line}, col {col}",
                *opened,
            ) from None
        raise LoadProblem("syntax", f"YAML syntax error: {exc.problem}{context}", line, col) from None
    except yaml.YAMLError as exc:
        raise LoadProblem("syntax", f"YAML error: {exc}") from None
    except RecursionError:
        raise LoadProblem("alias-expansion", "document is nested too deeply") from None
    finally:
        loader.dispose()


def document_version(data: dict) -> int:
    """The schema version a file declares, read the way InstructLab reads it (missing -> 1)."""
    value = data.get("version", 1)
    if isinstance(
        value, bool
    ):  # `version: true` is no version; kept as True (== 1) it poisoned the per-version schema cache
        return 1
    if isinstance(value, int):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return 1


def load_leaf(root: Path, relpath: str, limits: LoadLimits | None = None) -> Leaf:
    """Load `root/relpath` as a Leaf or raise LoadProblem."""
    limits = limits or LoadLimits()
    text = read_text(root / relpath, root, limits)
    data, positions, key_positions = parse_text(text, limits)
    if data is None:
        raise LoadProblem("empty", "file is empty")
    if not isinstance(data, dict):
        raise LoadProblem(
            "not-mapping",
            f"the top level must be a mapping of keys to values, found {'a list' if isinstance(data, list) else 'a single value'}",
        )
    return Leaf(
        path=relpath,
        root=root,
        kind=kind_of(relpath, data),
        version=document_version(data),
        data=data,
        text=text,
        content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        positions=positions,
        key_positions=key_positions,
    )
