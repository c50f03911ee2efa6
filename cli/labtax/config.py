"""Configuration: `[tool.labtax]` in pyproject.toml or a `.labtax.toml`, plus named profiles.

Resolution order (later wins): profile defaults -> config file -> (for a branch's changed files) the
profile's `changed-files` settings -> command-line options (`Overrides`, applied here and nowhere else).
One file at the taxonomy root serves the CLI, pre-commit and CI alike, so all give the same verdict.
"""

from __future__ import annotations

import functools
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from labtax.errors import LabtaxError

JUDGE_KEYS = {"model", "base-url"}
# The most the repository's settings may raise the loader's limits to (10 and 4 times the defaults: about
# 250 MB and 700 MB at worst). The settings come with pull requests: a raised limit let an alias bomb or a
# huge file through. Only the user raises a ceiling, where labtax runs (never from the repository).
CEILINGS = {"max-nodes": (1_000_000, "LABTAX_MAX_NODES"), "max-file-bytes": (4 * 1024 * 1024, "LABTAX_MAX_FILE_BYTES")}
INSTRUCTLAB_YAMLLINT = "{extends: relaxed, rules: {line-length: disable}}"

PROFILES: dict[str, dict] = {
    "default": {},
    # Exactly what InstructLab's CI applied: its schemas at each file's own version, and yamllint
    # `relaxed` without line-length on files of version 2 and up, counting only yamllint errors.
    "instructlab": {
        "select": [
            "LT001",
            "LT002",
            "LT004",
            "LT005",
            "LT006",
            "LT007",
            "LT008",
            "LT009",
            "LT010",
            "LT011",
            "LT012",
            "LT021",
        ],
        "duplicate-keys-fatal": False,
        "rules": {
            "LT009": {"level": "warning"},
            "LT011": {
                "config": INSTRUCTLAB_YAMLLINT,
                "skip-version-1": True,
                "min-level": "error",
                "errors": "yamllint",
                "universal-newlines": True,
            },
            "LT012": {"stray-files": False},
        },
        # InstructLab's lint workflow checks the files a pull request changes at the latest schema version
        # (it sets no SCHEMA_VERSION for them), so a touched version-1 file must meet version 3.
        "changed-files": {"rules": {"LT001": {"version": "latest"}, "LT011": {"skip-version-1": False}}},
    },
}


@dataclass
class Config:
    root: Path
    profile: str = "default"
    select: list[str] | None = None  # None: every rule
    ignore: list[str] = field(default_factory=list)
    rules: dict[str, dict] = field(default_factory=dict)  # rule id or name -> options (incl. "level")
    max_file_bytes: int = 1024 * 1024
    max_nodes: int = 100_000
    duplicate_keys_fatal: bool = True
    teacher: dict = field(default_factory=dict)
    judge: dict = field(default_factory=dict)  # [tool.labtax.judge]: a separate judge (model, base-url)
    changed_files: dict = field(default_factory=dict)  # settings that apply when linting a branch's changed files
    source: str | None = None  # the file settings came from, for messages

    def rule_options(self, rule) -> dict:
        """A rule's DEFAULTS overlaid with its settings, found by id or by name."""
        options = dict(getattr(rule, "DEFAULTS", {}))
        options.update(self.rules.get(rule.NAME, {}))
        options.update(self.rules.get(rule.ID, {}))
        return options

    def is_selected(self, rule) -> bool:
        names = {rule.ID, rule.NAME}
        if any(n in names for n in self.ignore):
            return False
        return self.select is None or any(n in names for n in self.select)


def _read_settings(root: Path) -> tuple[dict, str | None]:
    from labtax.taxonomy.files import read_bytes
    from labtax.taxonomy.problems import LoadProblem

    for name in (".labtax.toml", "pyproject.toml"):
        path = root / name
        if not (path.exists() or path.is_symlink()):
            continue
        try:  # the settings come with the repository (a pull request can change them): read them guarded
            text = read_bytes(path, root, 1024 * 1024).decode("utf-8")
            data = tomllib.loads(text)
        except LoadProblem as problem:
            raise LabtaxError(f"cannot read labtax settings from {name}: {problem.message}") from None
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise LabtaxError(f"cannot read labtax settings from {name}: {exc}; fix the TOML syntax") from None
        tool: dict = data["tool"] if isinstance(data.get("tool"), dict) else {}
        if name == ".labtax.toml":
            settings = tool.get("labtax", data)
        elif "labtax" in tool:
            settings = tool["labtax"]
        else:
            continue
        if not isinstance(settings, dict):
            raise LabtaxError(f"[tool.labtax] in {name} must be a table of settings; found {settings!r}")
        check_settings(settings, name, text)
        return settings, str(path)
    return {}, None


@functools.cache
def settings_schema() -> dict:
    """schema/config/v1/labtax.json: what each key of [tool.labtax] may hold, a rule's options by their types
    too (tests/unit/test_config.py keeps those equal to the rules' DEFAULTS: config sits below lint)."""
    from labtax.schemadir import SCHEMA_DIR

    return json.loads((SCHEMA_DIR / "config" / "v1" / "labtax.json").read_text(encoding="utf-8"))


def check_settings(settings: dict, name: str, text: str) -> None:
    """Validate the settings against the schema before anything reads them (they come with pull requests: a
    wrong type crashed lint, and "no" was read as true): one located line per bad key, then exit 2. An empty
    table has nothing to check: jsonschema is not imported for it (lint and the pre-commit hook start faster)."""
    if not settings:
        return
    from jsonschema import Draft202012Validator

    problems = []
    for error in Draft202012Validator(settings_schema()).iter_errors(settings):
        path = list(error.absolute_path)
        if error.validator == "additionalProperties":
            allowed = set(error.schema.get("properties", {}))
            for key in sorted(set(error.instance) - allowed):
                problems.append(
                    (path + [key], f"is not a labtax setting; known here: {', '.join(sorted(allowed))}", None)
                )
            continue
        description = error.schema.get("description") if isinstance(error.schema, dict) else None
        problems.append((path, f"must be {description or error.message}", error.instance))
    if not problems:
        return
    lines = []
    for path, problem, value in sorted(problems, key=lambda p: (_line_of(text, p[0], name), [str(k) for k in p[0]])):
        found = "" if value is None else f"; found {value!r}"
        lines.append(f"  {name}:{_line_of(text, path, name)}: {_key_name(path)} {problem}{found}")
    count = f"{len(lines)} bad labtax setting{'s' if len(lines) > 1 else ''}"
    raise LabtaxError(f"{count} in {name}; fix each where it says:\n" + "\n".join(lines))


def _key_name(path: list) -> str:
    """`level in [tool.labtax.rules.LT011]`, `select[1] in [tool.labtax]`: as labtax's other messages name keys."""
    keys = [str(k) for k in path if not isinstance(k, int)]
    index = "".join(f"[{k}]" for k in path if isinstance(k, int))
    if not keys:
        return "[tool.labtax]"
    table = ".".join(["tool.labtax", *keys[:-1]])
    return f"{keys[-1]}{index} in [{table}]"


def _line_of(text: str, path: list, name: str) -> int:
    """The line a key is set on, found by its name after its parents' (tomllib keeps no positions); 1 where
    it cannot be found. In pyproject.toml the search starts at [tool.labtax]."""
    lines = text.splitlines()
    start = 0
    if name == "pyproject.toml":
        start = next((i for i, line in enumerate(lines) if re.match(r"\s*\[\s*tool\.labtax\b", line)), 0)
    found = None
    for key in (k for k in path if not isinstance(k, int)):
        pattern = re.compile(r"(?:^|[\s{,.\[])\"?" + re.escape(str(key)) + r"\"?\s*[=.\]]")
        hit = next((i for i in range(start, len(lines)) if pattern.search(lines[i].split("#")[0])), None)
        if hit is None:
            break
        found = start = hit
    return (found if found is not None else 0) + 1


def _merge(config: Config, settings: dict) -> None:
    known = {
        "profile",
        "select",
        "ignore",
        "rules",
        "max-file-bytes",
        "max-nodes",
        "duplicate-keys-fatal",
        "teacher",
        "judge",
        "changed-files",
    }
    unknown = set(settings) - known
    if unknown:
        raise LabtaxError(f"unknown labtax setting(s) {sorted(unknown)} in {config.source}; known: {sorted(known)}")
    if "select" in settings:
        config.select = list(settings["select"])
    config.ignore += list(settings.get("ignore", []))
    for rule, options in settings.get("rules", {}).items():
        config.rules.setdefault(rule, {}).update(options)
    config.max_file_bytes = _limit(settings, "max-file-bytes", config.max_file_bytes, config.source)
    config.max_nodes = _limit(settings, "max-nodes", config.max_nodes, config.source)
    config.duplicate_keys_fatal = settings.get("duplicate-keys-fatal", config.duplicate_keys_fatal) is True
    config.teacher.update(settings.get("teacher", {}))
    judge = settings.get("judge", {})
    if not isinstance(judge, dict) or set(judge) - JUDGE_KEYS:
        found = sorted(set(judge) - JUDGE_KEYS) if isinstance(judge, dict) else type(judge).__name__
        raise LabtaxError(
            f"[tool.labtax.judge] in {config.source} takes only {', '.join(sorted(JUDGE_KEYS))}; found {found}"
        )
    config.judge.update(judge)
    config.changed_files.update(settings.get("changed-files", {}))


def ceiling(key: str) -> int:
    """The most `key` may be set to by the repository's settings: labtax's ceiling, or the user's own."""
    import os

    default, variable = CEILINGS[key]
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise LabtaxError(f"{variable}={raw!r} is not a positive whole number; set it to the most {key} may be")
    return int(raw)


def _limit(settings: dict, key: str, current: int, source: str | None) -> int:
    """A loader limit from the settings: a positive whole number, at most the ceiling."""
    if key not in settings:
        return current
    value, where = settings[key], Path(source).name if source else "the labtax settings"
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise LabtaxError(f"{key} in {where} must be a positive whole number; found {value!r}")
    limit = ceiling(key)
    if value > limit:
        variable = CEILINGS[key][1]
        raise LabtaxError(
            f"{key} = {value} in {where} is over the ceiling of {limit} that a repository's settings may set (they "
            f"come with pull requests); lower it, or raise the ceiling where labtax runs: {variable}={value}"
        )
    return value


@dataclass(frozen=True)
class Endpoints:
    """The teacher and judge options generate and vet share (commands.options.teacher_options): which endpoints
    serve, asked on the command line; the settings file says the rest (teacher/resolve.py)."""

    concurrency: int = 8
    timeout: float | None = None  # None: the settings' teacher timeout, else the backend's default
    model: str | None = None
    base_url: str | None = None
    judge_model: str | None = None
    judge_base_url: str | None = None
    judge_tokenizer: Path | None = None  # the endpoint judge's tokenizer folder: scores over /v1/completions


@dataclass(frozen=True)
class Overrides:
    """What the command line says: the last word over the profile and the settings file. Commands build one
    from their options; `load_config` applies it, so no command edits `Config.rules` itself."""

    select: tuple[str, ...] = ()  # only these rules (lint --select)
    ignore: tuple[str, ...] = ()  # skip these too (lint --ignore)
    yaml_rules: str | None = None  # a yamllint config's text: replaces the style rules (LT011; lint --yaml-rules)
    check_documents: bool | None = None  # fetch and check knowledge documents (LT022; lint --[no-]check-documents)
    offline: bool = False  # documents only from the cache, never fetched (LT022; lint and generate --offline)

    def apply(self, config: Config) -> None:
        if self.select:
            config.select = list(self.select)
        config.ignore += list(self.ignore)
        if self.yaml_rules is not None:  # InstructLab's --yaml-rules: replaces the built-in style rules
            config.rules.setdefault("LT011", {})["config"] = self.yaml_rules
        if self.check_documents is not None or self.offline:  # a choice on the command line settles both
            options = config.rules.setdefault("LT022", {})
            if self.check_documents is not None:
                options["enabled"] = self.check_documents
            options["offline"] = self.offline


def load_config(
    root: Path, *, profile: str | None = None, changed: bool = False, overrides: Overrides | None = None
) -> Config:
    """The settings for `root`: the profile, the settings file, with `changed` the profile's settings for a
    branch's changed files, then the command line's `overrides`."""
    settings, source = _read_settings(root)
    profile = profile or settings.get("profile", "default")
    if profile not in PROFILES:
        raise LabtaxError(f"unknown profile '{profile}'; choose one of: {', '.join(PROFILES)}")
    config = Config(root=root, profile=profile, source=source)
    _merge(config, PROFILES[profile])
    if profile == "default":  # a named compatibility profile is exact: the file's rule tweaks don't apply
        _merge(config, {k: v for k, v in settings.items() if k != "profile"})
    else:
        _merge(config, {k: v for k, v in settings.items() if k in ("teacher", "judge")})
    if changed:
        for_changed_files(config)
    if overrides is not None:
        overrides.apply(config)
    return config


def for_changed_files(config: Config) -> Config:
    """The config as it applies to a branch's changed files (`--changed`/`--base`): the profile's
    `changed-files` settings on top."""
    if config.changed_files:
        _merge(config, {k: v for k, v in config.changed_files.items() if k != "changed-files"})
    return config


def find_root(start: Path | None = None) -> Path:
    """The taxonomy root: the nearest folder at or above `start` holding a tree or a labtax setting."""
    from labtax.taxonomy.kinds import TREES

    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / tree).is_dir() for tree in TREES) or (folder / ".labtax.toml").is_file():
            return folder
        if (folder / ".git").exists():
            return folder
    return here
