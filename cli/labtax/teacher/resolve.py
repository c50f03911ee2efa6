"""Which teacher serves, and why: the one place that decides between an endpoint and the embedded model.

Precedence, first found wins: command-line flags > environment (OPENAI_BASE_URL, OPENAI_API_KEY,
LABTAX_TEACHER_MODEL) > `[tool.labtax.teacher]` (base-url, model, api-key-env) > the embedded default.
`describe_teacher` never imports torch or openai (it backs `labtax teacher info` and generate's first
line); `make_teacher` builds the backend, failing with the fix when it cannot serve.

The judge (who answers the judge stages) is the teacher unless one is named: `--judge-base-url` /
`--judge-model` > `[tool.labtax.judge]` (base-url, model). A judge model without a judge URL is asked at the
teacher's endpoint; `embedded` names the in-process model. Its key: LABTAX_JUDGE_API_KEY, else the teacher's
(OPENAI_API_KEY, else the teacher's api-key-env). `describe_judge` / `make_judge` return None when the
teacher judges.
"""

from __future__ import annotations

import os

from labtax.errors import LabtaxError
from labtax.teacher.base import Teacher, TeacherInfo
from labtax.teacher.weights import MODEL_NAME

EMBEDDED_ALIASES = {MODEL_NAME.lower(), f"huggingfacetb/{MODEL_NAME.lower()}", "embedded"}


def describe_teacher(config, *, base_url=None, model=None, api_key=None) -> TeacherInfo:
    settings = dict(getattr(config, "teacher", None) or {})
    where = f"[tool.labtax.teacher] in {getattr(config, 'source', None) or 'the labtax settings'}"
    url, url_reason = _first(
        (base_url, "--base-url given"),
        (os.environ.get("OPENAI_BASE_URL"), "OPENAI_BASE_URL is set"),
        (settings.get("base-url"), f"base-url set in {where}"),
    )
    name, name_source = _first(
        (model, "--model"),
        (os.environ.get("LABTAX_TEACHER_MODEL"), "LABTAX_TEACHER_MODEL"),
        (settings.get("model"), f"model in {where}"),
    )
    if url:
        return _describe_endpoint(url, url_reason, name, name_source, api_key, settings)
    return _describe_embedded(name, name_source)


def make_teacher(config, *, base_url=None, model=None, api_key=None, concurrency=8) -> Teacher:
    """The serving backend; a LabtaxError naming the fix when the chosen one cannot serve."""
    info = describe_teacher(config, base_url=base_url, model=model, api_key=api_key)
    if info.details.get("problems"):
        raise LabtaxError(info.details["problems"][0])
    if info.name == "openai":
        from labtax.teacher.openai_backend import OpenAITeacher

        key = _api_key(api_key, dict(getattr(config, "teacher", None) or {}))[0]
        return OpenAITeacher(info.details["base_url"], key, info.model, concurrency=concurrency)
    from labtax.teacher.embedded import EmbeddedTeacher

    return EmbeddedTeacher()


def describe_judge(config, teacher: TeacherInfo, *, base_url=None, model=None) -> TeacherInfo | None:
    """The separate judge, or None when the teacher judges its own output (nothing named, or the judge named
    is the teacher itself: the same endpoint and model, or the embedded model under an embedded teacher)."""
    settings = dict(getattr(config, "judge", None) or {})
    where = f"[tool.labtax.judge] in {getattr(config, 'source', None) or 'the labtax settings'}"
    url, url_reason = _first(
        (base_url, "--judge-base-url given"),
        (settings.get("base-url"), f"base-url set in {where}"),
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
    if not url:
        if teacher.name == "openai":
            url, url_reason = teacher.details["base_url"], f"{name_source} given: asked at the teacher's endpoint"
        else:
            problems.append(
                f"the judge model '{name}' (from {name_source}) needs an endpoint: pass --judge-base-url or set "
                "base-url in [tool.labtax.judge]"
            )
    if url and not name:
        problems.append(
            f"no model named for the judge endpoint {url}: pass --judge-model or set model in [tool.labtax.judge]"
        )
    if not problems and teacher.name == "openai" and (url, name) == (teacher.details.get("base_url"), teacher.model):
        return None
    _, key_source = _judge_api_key(config)
    details = {"base_url": url, "model_source": name_source, "api_key_source": key_source, "problems": problems}
    return TeacherInfo(name="openai", model=name or "(none)", reason=url_reason or "", details=details)


def make_judge(config, teacher: TeacherInfo, *, base_url=None, model=None, concurrency=8) -> Teacher | None:
    """The separate judge's backend, or None when the teacher judges; a LabtaxError naming the fix when the
    judge named cannot serve."""
    info = describe_judge(config, teacher, base_url=base_url, model=model)
    if info is None:
        return None
    if info.details.get("problems"):
        raise LabtaxError(info.details["problems"][0])
    if info.name == "openai":
        from labtax.teacher.openai_backend import OpenAITeacher

        key = _judge_api_key(config)[0]
        return OpenAITeacher(info.details["base_url"], key, info.model, concurrency=concurrency)
    from labtax.teacher.embedded import EmbeddedTeacher

    return EmbeddedTeacher()


def _judge_api_key(config) -> tuple[str | None, str | None]:
    """LABTAX_JUDGE_API_KEY, else the teacher's key as _api_key finds it; the key itself is never shown."""
    if os.environ.get("LABTAX_JUDGE_API_KEY"):
        return os.environ["LABTAX_JUDGE_API_KEY"], "LABTAX_JUDGE_API_KEY"
    return _api_key(None, dict(getattr(config, "teacher", None) or {}))


def _describe_endpoint(url, url_reason, name, name_source, api_key, settings) -> TeacherInfo:
    _, key_source = _api_key(api_key, settings)
    problems = []
    if not name:
        problems.append(
            f"no model named for the endpoint {url}: pass --model, set LABTAX_TEACHER_MODEL, "
            "or set model in [tool.labtax.teacher]"
        )
    details = {"base_url": url, "model_source": name_source, "api_key_source": key_source, "problems": problems}
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


def _api_key(flag, settings) -> tuple[str | None, str | None]:
    """(key, where it came from); the key itself is never shown."""
    if flag:
        return flag, "--api-key"
    if os.environ.get("OPENAI_API_KEY"):
        return os.environ["OPENAI_API_KEY"], "OPENAI_API_KEY"
    variable = settings.get("api-key-env")
    if variable:
        value = os.environ.get(variable)
        return value, variable if value else f"{variable} (not set)"
    return None, None


def _first(*candidates) -> tuple:
    for value, reason in candidates:
        if value:
            return value, reason
    return None, None
