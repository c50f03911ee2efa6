"""Which teacher serves, and why: the one place that decides between an endpoint and the embedded model.

Precedence, first found wins: command-line flags > environment (OPENAI_BASE_URL, OPENAI_API_KEY,
LABTAX_TEACHER_MODEL) > `[tool.labtax.teacher]` (base-url, model) > the embedded default.
`describe_teacher` never imports torch or openai (it backs `labtax teacher info` and generate's first
line); `make_teacher` builds the backend, failing with the fix when it cannot serve.

The judge (who answers the judge stages) is the teacher unless one is named: `--judge-base-url` /
`--judge-model` > LABTAX_JUDGE_BASE_URL > `[tool.labtax.judge]` (base-url, model). A judge model without a
judge URL is asked at the teacher's endpoint; `embedded` names the in-process model. Its key:
LABTAX_JUDGE_API_KEY, else OPENAI_API_KEY. `describe_judge` / `make_judge` return None when the teacher judges.

Credentials (docs/ci.md, threat model): the taxonomy's settings come with the repository, so a pull request
can change them, and nothing it can change decides where a secret goes. An endpoint from those settings
gets no key from the environment: the user confirms an endpoint by naming it outside the repository
(`--base-url` / OPENAI_BASE_URL, `--judge-base-url` / LABTAX_JUDGE_BASE_URL), which then serves with the
key. A judge at the teacher's endpoint the user named is confirmed with it. In CI (`CI` set) the settings
cannot move the teacher or the judge at all: an endpoint from them is refused (exit 2), naming the fix.
`api-key-env` is not read: a variable name the repository picks would choose which secret is sent.

Each endpoint call has one deadline (`call_timeout`): --timeout > `[tool.labtax.teacher] timeout` > 60 s, for
the teacher's calls and the judge's.
"""

from __future__ import annotations

import os

from labtax.errors import LabtaxError
from labtax.teacher.base import Teacher, TeacherInfo
from labtax.teacher.weights import MODEL_NAME

EMBEDDED_ALIASES = {MODEL_NAME.lower(), f"huggingfacetb/{MODEL_NAME.lower()}", "embedded"}


def in_ci() -> bool:
    """CI is set to anything but an explicit no (GitHub, GitLab and most others set CI=true): fail closed."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off")


def describe_teacher(config, *, base_url=None, model=None, api_key=None) -> TeacherInfo:
    settings = dict(getattr(config, "teacher", None) or {})
    where = f"[tool.labtax.teacher] in {getattr(config, 'source', None) or 'the labtax settings'}"
    url, url_reason, from_repository = _first(
        (base_url, "--base-url given", False),
        (os.environ.get("OPENAI_BASE_URL"), "OPENAI_BASE_URL is set", False),
        (settings.get("base-url"), f"base-url set in {where}", True),
    )
    name, name_source = _first(
        (model, "--model"),
        (os.environ.get("LABTAX_TEACHER_MODEL"), "LABTAX_TEACHER_MODEL"),
        (settings.get("model"), f"model in {where}"),
    )
    if url:
        return _describe_endpoint(url, url_reason, not from_repository, name, name_source, api_key, settings, where)
    return _describe_embedded(name, name_source)


def make_teacher(
    config, *, base_url=None, model=None, api_key=None, concurrency=8, timeout=None, notice=None
) -> Teacher:
    """The serving backend; a LabtaxError naming the fix when the chosen one cannot serve. `timeout`: --timeout
    (None: call_timeout's default); `notice`: where an endpoint's warnings go."""
    info = describe_teacher(config, base_url=base_url, model=model, api_key=api_key)
    if info.details.get("problems"):
        raise LabtaxError(info.details["problems"][0])
    if info.name == "openai":
        from labtax.teacher.openai_backend import OpenAITeacher

        return OpenAITeacher(
            info.details["base_url"],
            teacher_key(info, api_key),
            info.model,
            concurrency=concurrency,
            timeout=call_timeout(config, timeout),
            notice=notice,
        )
    from labtax.teacher.embedded import EmbeddedTeacher

    return EmbeddedTeacher()


def describe_judge(config, teacher: TeacherInfo, *, base_url=None, model=None) -> TeacherInfo | None:
    """The separate judge, or None when the teacher judges its own output (nothing named, or the judge named
    is the teacher itself: the same endpoint and model, or the embedded model under an embedded teacher)."""
    settings = dict(getattr(config, "judge", None) or {})
    where = f"[tool.labtax.judge] in {getattr(config, 'source', None) or 'the labtax settings'}"
    url, url_reason, from_repository = _first(
        (base_url, "--judge-base-url given", False),
        (os.environ.get("LABTAX_JUDGE_BASE_URL"), "LABTAX_JUDGE_BASE_URL is set", False),
        (settings.get("base-url"), f"base-url set in {where}", True),
    )
    name, name_source = _first(
        (model, "--judge-model"),
        (settings.get("model"), f"model in {where}"),
    )
    if not url and not name:
        return None
    if not url and (name.lower() == "embedded" or (teacher.name == "embedded" and name.lower() in EMBEDDED_ALIASES)):
        if teacher.name == "embedded":
            return None
        info = _describe_embedded(None, None)
        info.reason = f"{name_source} names the embedded model"
        return info
    problems = []
    confirmed = not from_repository
    if url and from_repository and teacher.name == "openai" and _same_url(url, teacher.details["base_url"]):
        confirmed = teacher.details.get("endpoint_confirmed", False)  # the teacher's endpoint: as confirmed as it
    if not url:
        if teacher.name == "openai":
            url, url_reason = teacher.details["base_url"], f"{name_source} given: asked at the teacher's endpoint"
            confirmed = teacher.details.get("endpoint_confirmed", False)
        else:
            problems.append(
                f"the judge model '{name}' (from {name_source}) needs an endpoint: pass --judge-base-url or set "
                "base-url in [tool.labtax.judge]"
            )
    elif not confirmed and in_ci():
        problems.append(
            f"in CI the repository's settings cannot choose where the judge's prompts and keys go: base-url in {where} "
            "is refused; name the judge's endpoint in the workflow (--judge-base-url, or LABTAX_JUDGE_BASE_URL from a "
            "secret), or remove base-url from the settings"
        )
    if url and not name:
        problems.append(
            f"no model named for the judge endpoint {url}: pass --judge-model or set model in [tool.labtax.judge]"
        )
    if not problems and teacher.name == "openai" and (url, name) == (teacher.details.get("base_url"), teacher.model):
        return None
    _, key_source = _judge_key(confirmed)
    withheld = _withheld("LABTAX_JUDGE_API_KEY", "OPENAI_API_KEY")
    if url and not confirmed and withheld:
        url_reason += "; " + _not_sent(withheld, "--judge-base-url or LABTAX_JUDGE_BASE_URL")
    details = {
        "base_url": url,
        "model_source": name_source,
        "api_key_source": key_source,
        "endpoint_confirmed": confirmed,
        "problems": problems,
    }
    return TeacherInfo(name="openai", model=name or "(none)", reason=url_reason or "", details=details)


def make_judge(
    config, teacher: TeacherInfo, *, base_url=None, model=None, concurrency=8, timeout=None, notice=None
) -> Teacher | None:
    """The separate judge's backend, or None when the teacher judges; a LabtaxError naming the fix when the
    judge named cannot serve."""
    info = describe_judge(config, teacher, base_url=base_url, model=model)
    if info is None:
        return None
    if info.details.get("problems"):
        raise LabtaxError(info.details["problems"][0])
    if info.name == "openai":
        from labtax.teacher.openai_backend import OpenAITeacher

        return OpenAITeacher(
            info.details["base_url"],
            judge_key(info),
            info.model,
            concurrency=concurrency,
            timeout=call_timeout(config, timeout),
            role="judge",
            notice=notice,
        )
    from labtax.teacher.embedded import EmbeddedTeacher

    return EmbeddedTeacher()


def call_timeout(config, flag: float | None = None) -> float:
    """Seconds one endpoint call may take in all, the teacher's and the judge's: --timeout >
    `[tool.labtax.teacher] timeout` > 60. A LabtaxError naming the fix for a setting that is no such number."""
    from labtax.teacher.openai_backend import DEFAULT_TIMEOUT

    if flag is not None:
        return float(flag)
    settings = dict(getattr(config, "teacher", None) or {})
    value = settings.get("timeout")
    if value is None:
        return DEFAULT_TIMEOUT
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
        where = getattr(config, "source", None) or "the labtax settings"
        raise LabtaxError(
            f"timeout in [tool.labtax.teacher] in {where} must be a number of seconds above 0 (found {value!r}); "
            "fix it there, or pass --timeout SECONDS"
        )
    return float(value)


def teacher_key(info: TeacherInfo, flag: str | None = None) -> str | None:
    """The key sent to the teacher's endpoint described by `info`: none to an endpoint the user did not name."""
    return _teacher_key(flag, bool(info.details.get("endpoint_confirmed")))[0]


def judge_key(info: TeacherInfo) -> str | None:
    """The key sent to the judge's endpoint described by `info`: none to an endpoint the user did not name."""
    return _judge_key(bool(info.details.get("endpoint_confirmed")))[0]


def _teacher_key(flag, confirmed: bool) -> tuple[str | None, str | None]:
    """(key, where it came from); the key itself is never shown."""
    if flag:
        return flag, "--api-key"
    if not os.environ.get("OPENAI_API_KEY"):
        return None, None
    if not confirmed:
        return None, "none: " + _not_sent("OPENAI_API_KEY", "--base-url or OPENAI_BASE_URL")
    return os.environ["OPENAI_API_KEY"], "OPENAI_API_KEY"


def _judge_key(confirmed: bool) -> tuple[str | None, str | None]:
    """LABTAX_JUDGE_API_KEY, else OPENAI_API_KEY, to an endpoint the user named; the key itself is never shown."""
    withheld = _withheld("LABTAX_JUDGE_API_KEY", "OPENAI_API_KEY")
    if not withheld:
        return None, None
    if not confirmed:
        return None, "none: " + _not_sent(withheld, "--judge-base-url or LABTAX_JUDGE_BASE_URL")
    return os.environ[withheld], withheld


def _withheld(*names: str) -> str | None:
    """The first of `names` set in the environment (the key that would be sent)."""
    return next((name for name in names if os.environ.get(name)), None)


def _not_sent(variable: str, how: str) -> str:
    return (
        f"{variable} is not sent to an endpoint the repository's settings chose (a pull request can change them); "
        f"to send it there, name that endpoint yourself with {how}"
    )


def _same_url(a: str, b: str) -> bool:
    return str(a).rstrip("/") == str(b).rstrip("/")


def _describe_endpoint(url, url_reason, confirmed, name, name_source, api_key, settings, where) -> TeacherInfo:
    _, key_source = _teacher_key(api_key, confirmed)
    problems = []
    if not confirmed and in_ci():
        problems.append(
            f"in CI the repository's settings cannot choose where the teacher's prompts and keys go: base-url in {where} "
            "is refused; name the endpoint in the workflow (OPENAI_BASE_URL from a secret, or --base-url), or remove "
            "base-url from the settings (no endpoint: the embedded teacher serves)"
        )
    if settings.get("api-key-env"):
        problems.append(
            f"api-key-env in {where} is not read: a repository's settings cannot choose which environment variable "
            'is sent as the key; export the key as OPENAI_API_KEY (e.g. OPENAI_API_KEY="$MY_KEY" labtax generate) '
            "and remove api-key-env"
        )
    if not name:
        problems.append(
            f"no model named for the endpoint {url}: pass --model, set LABTAX_TEACHER_MODEL, "
            "or set model in [tool.labtax.teacher]"
        )
    if not confirmed and os.environ.get("OPENAI_API_KEY") and not api_key:
        url_reason += "; " + _not_sent("OPENAI_API_KEY", "--base-url or OPENAI_BASE_URL")
    details = {
        "base_url": url,
        "model_source": name_source,
        "api_key_source": key_source,
        "endpoint_confirmed": confirmed,
        "problems": problems,
    }
    return TeacherInfo(name="openai", model=name or "(none)", reason=url_reason, details=details)


def _describe_embedded(name, name_source) -> TeacherInfo:
    from labtax.teacher.embedded import DEFAULT_BATCH_SIZE, default_threads, preferred_dtype
    from labtax.teacher.smollm import INSTALL_EXTRA, cache_status

    status = cache_status()
    problems = []
    if name and name.lower() not in EMBEDDED_ALIASES:
        problems.append(
            f"model '{name}' (from {name_source}) needs an endpoint: pass --base-url or set OPENAI_BASE_URL; "
            f"the embedded teacher serves only {MODEL_NAME}"
        )
    if status["missing_modules"]:
        problems.append(
            f"the embedded teacher needs {', '.join(status['missing_modules'])}: run `{INSTALL_EXTRA}` (or `make demo`), "
            "or point labtax at an endpoint with --base-url / OPENAI_BASE_URL"
        )
    if status.get("problem"):
        problems.append(status["problem"])
    details = {
        **status,
        "dtype": preferred_dtype(),
        "threads": default_threads(),
        "batch_size": DEFAULT_BATCH_SIZE,
        "problems": problems,
    }
    reason = f"no endpoint configured: embedded default {MODEL_NAME}"
    return TeacherInfo(name="embedded", model=MODEL_NAME, reason=reason, details=details)


def _first(*candidates) -> tuple:
    """The first candidate (value, reason, ...) whose value is set; all None when none is."""
    for candidate in candidates:
        if candidate[0]:
            return candidate
    return (None,) * len(candidates[0])
