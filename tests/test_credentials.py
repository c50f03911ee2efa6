"""Nothing a pull request can change decides where a secret goes (docs/ci.md, threat model).

The taxonomy's settings (`.labtax.toml`, `[tool.labtax]` in pyproject.toml) come with the repository. Real
`labtax generate` runs against scripted OpenAI-compatible servers on 127.0.0.1 that record the Authorization
header of every request: `trusted` is the endpoint the user named, `named_by_pr` the one the settings name.
An endpoint from the settings gets no key from the environment unless the user named it too; `api-key-env`
is not read; in CI the settings cannot move the teacher or the judge at all.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from labtax.config import load_config
from labtax.errors import LabtaxError
from labtax.teacher.resolve import describe_judge, describe_teacher

from .conftest import REPO
from .fake_openai import FakeOpenAI

LEAF = "compositional_skills/writing/business/ceo_earnings_email"
SECRET = "sk-user-secret"
JUDGE_SECRET = "sk-judge-secret"
ENVIRONMENT = (
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "LABTAX_TEACHER_MODEL",
    "LABTAX_JUDGE_API_KEY",
    "LABTAX_JUDGE_BASE_URL",
    "GITHUB_TOKEN",
    "CI",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def trusted():
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def named_by_pr():
    with FakeOpenAI() as fake:
        yield fake


def taxonomy(tmp_path: Path, settings: str) -> Path:
    """One skill leaf and the pull request's `.labtax.toml`."""
    root = tmp_path / "tax"
    shutil.copytree(REPO / LEAF, root / LEAF)
    (root / ".labtax.toml").write_text(settings, encoding="utf-8")
    return root


def generate(root: Path, *args: str, **env: str) -> tuple[int, str]:
    """`labtax generate` in this process: (status, everything it printed, an error as main() reports it). Each
    run writes a new output folder: no call is replayed from an earlier run's cache."""
    from click.testing import CliRunner

    from labtax.main import cli

    output = tempfile.mkdtemp(prefix="out-", dir=root.parent)
    base = ["generate", "--root", str(root), "-n", "1", "--no-progress", "--no-calibrate", "--output", output]
    result = CliRunner().invoke(cli, [*base, *args], env=env, standalone_mode=False)
    if isinstance(result.exception, LabtaxError):
        return result.exception.exit_code, result.output + f"labtax: error: {result.exception}\n"
    if result.exception is not None:
        raise result.exception
    return result.return_value or 0, result.output


def keys_seen(fake: FakeOpenAI, model: str | None = None) -> set[str | None]:
    return {header for asked, header in fake.authorizations if model is None or asked == model}


def bearer(key: str) -> str:
    return f"Bearer {key}"


def test_an_endpoint_from_the_settings_gets_no_key_from_the_environment(tmp_path, named_by_pr):
    """Outside CI the settings may still name a keyless endpoint (a local server), but the user's key stays."""
    root = taxonomy(tmp_path, f'[tool.labtax.teacher]\nbase-url = "{named_by_pr.base_url}"\nmodel = "fake-teacher"\n')
    status, output = generate(root, OPENAI_API_KEY=SECRET)
    assert status == 0, output
    assert named_by_pr.authorizations and bearer(SECRET) not in keys_seen(named_by_pr)
    assert "OPENAI_API_KEY is not sent to an endpoint the repository's settings chose" in output
    assert "--base-url or OPENAI_BASE_URL" in output  # the fix, on the teacher's line


def test_the_user_confirms_an_endpoint_by_naming_it_outside_the_repository(tmp_path, trusted):
    root = taxonomy(tmp_path, f'[tool.labtax.teacher]\nbase-url = "{trusted.base_url}"\nmodel = "fake-teacher"\n')
    status, output = generate(root, OPENAI_API_KEY=SECRET, OPENAI_BASE_URL=trusted.base_url)
    assert status == 0, output
    assert keys_seen(trusted) == {bearer(SECRET)}
    status, output = generate(root, "--base-url", trusted.base_url, OPENAI_API_KEY=SECRET)
    assert status == 0 and keys_seen(trusted) == {bearer(SECRET)}, output


@pytest.mark.parametrize("pr_url", [False, True], ids=["user-endpoint", "pr-endpoint"])
def test_api_key_env_cannot_choose_which_secret_is_sent(tmp_path, trusted, named_by_pr, pr_url):
    """`api-key-env = "GITHUB_TOKEN"` would send that token as the bearer key: refused, nothing is sent."""
    where = f'base-url = "{named_by_pr.base_url}"\n' if pr_url else ""
    root = taxonomy(tmp_path, f'[tool.labtax.teacher]\n{where}model = "fake-teacher"\napi-key-env = "GITHUB_TOKEN"\n')
    env = {"GITHUB_TOKEN": "ghp_secret"} | ({} if pr_url else {"OPENAI_BASE_URL": trusted.base_url})
    status, output = generate(root, **env)
    assert status == 2, output
    assert "api-key-env in [tool.labtax.teacher]" in output and "export the key as OPENAI_API_KEY" in output
    assert "Traceback" not in output
    assert trusted.authorizations == named_by_pr.authorizations == []


def test_in_ci_the_settings_cannot_move_the_teacher(tmp_path, named_by_pr):
    root = taxonomy(tmp_path, f'[tool.labtax.teacher]\nbase-url = "{named_by_pr.base_url}"\nmodel = "fake-teacher"\n')
    status, output = generate(root, CI="true", OPENAI_API_KEY=SECRET)
    assert status == 2, output
    assert "in CI the repository's settings cannot choose where the teacher's prompts and keys go" in output
    assert "OPENAI_BASE_URL" in output and "--base-url" in output
    assert named_by_pr.authorizations == []  # no prompt, no key


def test_in_ci_the_workflows_endpoint_serves_and_the_settings_base_url_is_unused(tmp_path, trusted, named_by_pr):
    root = taxonomy(tmp_path, f'[tool.labtax.teacher]\nbase-url = "{named_by_pr.base_url}"\nmodel = "fake-teacher"\n')
    status, output = generate(root, CI="1", OPENAI_API_KEY=SECRET, OPENAI_BASE_URL=trusted.base_url)
    assert status == 0, output
    assert keys_seen(trusted) == {bearer(SECRET)} and named_by_pr.authorizations == []


def test_in_ci_the_settings_cannot_move_the_judge(tmp_path, trusted, named_by_pr):
    """The generate workflow's case: the teacher comes from the workflow's secrets, the pull request's settings
    name a judge elsewhere. Before: the judge's prompts went there with OPENAI_API_KEY as its key."""
    root = taxonomy(tmp_path, f'[tool.labtax.judge]\nbase-url = "{named_by_pr.base_url}"\nmodel = "big-judge"\n')
    env = {"CI": "true", "OPENAI_BASE_URL": trusted.base_url, "OPENAI_API_KEY": SECRET}
    status, output = generate(root, LABTAX_TEACHER_MODEL="fake-teacher", **env)
    assert status == 2, output
    assert "in CI the repository's settings cannot choose where the judge's prompts and keys go" in output
    assert "--judge-base-url" in output and "LABTAX_JUDGE_BASE_URL" in output
    assert named_by_pr.authorizations == []
    # The workflow names the judge's endpoint itself: it serves, with the judge's key.
    status, output = generate(
        root, LABTAX_TEACHER_MODEL="fake-teacher", LABTAX_JUDGE_BASE_URL=named_by_pr.base_url, **env
    )
    assert status == 0, output
    assert keys_seen(named_by_pr) == {bearer(SECRET)}


def test_outside_ci_a_judge_from_the_settings_gets_neither_key(tmp_path, trusted, named_by_pr):
    root = taxonomy(tmp_path, f'[tool.labtax.judge]\nbase-url = "{named_by_pr.base_url}"\nmodel = "big-judge"\n')
    env = {"OPENAI_BASE_URL": trusted.base_url, "OPENAI_API_KEY": SECRET, "LABTAX_JUDGE_API_KEY": JUDGE_SECRET}
    status, output = generate(root, LABTAX_TEACHER_MODEL="fake-teacher", **env)
    assert status == 0, output
    assert named_by_pr.authorizations, "the judge stages went to the settings' endpoint"
    assert not keys_seen(named_by_pr) & {bearer(SECRET), bearer(JUDGE_SECRET)}
    assert keys_seen(trusted) == {bearer(SECRET)}
    assert "LABTAX_JUDGE_API_KEY is not sent to an endpoint the repository's settings chose" in output


def test_a_judge_at_an_endpoint_the_user_named_gets_its_key(tmp_path, trusted, named_by_pr):
    """The settings' judge URL is the teacher's endpoint the user named (another model there): confirmed with
    it. And --judge-base-url names a judge endpoint from the command line."""
    root = taxonomy(tmp_path, f'[tool.labtax.judge]\nbase-url = "{trusted.base_url}/"\nmodel = "big-judge"\n')
    env = {"OPENAI_BASE_URL": trusted.base_url, "OPENAI_API_KEY": SECRET, "LABTAX_JUDGE_API_KEY": JUDGE_SECRET}
    status, output = generate(root, LABTAX_TEACHER_MODEL="fake-teacher", **env)
    assert status == 0, output
    assert keys_seen(trusted, "big-judge") == {bearer(JUDGE_SECRET)}
    assert keys_seen(trusted, "fake-teacher") == {bearer(SECRET)}
    status, output = generate(
        root, "--judge-base-url", named_by_pr.base_url, LABTAX_TEACHER_MODEL="fake-teacher", **env
    )
    assert status == 0, output
    assert keys_seen(named_by_pr) == {bearer(JUDGE_SECRET)}


def test_the_ray_executor_sends_the_same_keys(tmp_path, monkeypatch):
    """--executor ray builds its clients from these functions: the same rule holds there."""
    from labtax.teacher.resolve import judge_key, teacher_key

    root = taxonomy(
        tmp_path,
        '[tool.labtax.teacher]\nbase-url = "http://pr.example/v1"\nmodel = "m"\n'
        '[tool.labtax.judge]\nbase-url = "http://pr-judge.example/v1"\nmodel = "j"\n',
    )
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("LABTAX_JUDGE_API_KEY", JUDGE_SECRET)
    config = load_config(root)
    teacher = describe_teacher(config)
    judge = describe_judge(config, teacher)
    assert judge is not None
    assert (teacher_key(teacher), judge_key(judge)) == (None, None)
    assert teacher.details["api_key_source"].startswith("none: OPENAI_API_KEY is not sent")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://user.example/v1")
    teacher = describe_teacher(config)
    judge = describe_judge(config, teacher, base_url="http://user-judge.example/v1")
    assert judge is not None
    assert (teacher_key(teacher), judge_key(judge)) == (SECRET, JUDGE_SECRET)
