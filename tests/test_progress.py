"""Progress where people look: tqdm bars in a terminal, periodic plain lines in a log without one.

The subprocess tests run the real `labtax generate` against the fake OpenAI server with latency, so the
run lasts a few seconds, and shorten the interval with LABTAX_PROGRESS_INTERVAL.
"""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

from labtax.generate.progress import (
    PlainProgress,
    Plan,
    StageProgress,
    call_kind,
    expected_calls,
    interval_from_env,
    rate,
    span,
)

from .conftest import run_labtax
from .fake_openai import FakeOpenAI
from .test_generate import make_taxonomy

STAGE_LINE = re.compile(r"^progress (\d+ s|\d+ min \d+ s)( \(done\))?, teacher calls by stage: (.+)$")


def _env(fake, interval: str = "0.3") -> dict:
    return {
        "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_API_KEY": "sk-test",
        "LABTAX_TEACHER_MODEL": "fake-teacher",
        "LABTAX_PROGRESS_INTERVAL": interval,
    }


def test_without_a_terminal_a_log_gets_plain_lines_every_interval(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform", "knowledge"))
    args = ("generate", "-n", "3", "--concurrency", "2", "--output", str(tmp_path / "out"))
    with FakeOpenAI(latency=0.08) as fake:
        proc = run_labtax(*args, cwd=root, env=_env(fake))  # stderr is a pipe, as in GitHub Actions
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("progress ")]
    assert len(lines) >= 3, proc.stderr  # ~2 s of calls at a 0.3 s interval
    assert all(STAGE_LINE.match(line) for line in lines), lines
    assert "\r" not in proc.stderr and "\x1b[" not in proc.stderr  # no bar redraws in the log
    for stage in ("question", "judge_question", "answer", "judge_pair", "qa", "judge_faithful"):
        assert re.search(rf"\b{stage} \d+(/\d+)?\b", lines[-1]), lines[-1]
    done = [int(n) for n in re.findall(r"\bjudge_pair (\d+)", "\n".join(lines))]
    assert done == sorted(done) and done[-1] >= 3  # counts only grow
    assert lines[-1].split(",")[0].endswith("(done)")  # the last line says the run finished
    assert re.search(r"\(\d+(\.\d+)?/(s|min)\)", "\n".join(lines[:-1]))  # a rate while running
    for done, total in re.findall(r"\b[a-z_]+ (\d+)/(\d+)\b", "\n".join(lines)):
        assert int(done) <= int(total), lines  # retries are said as retries, never "13/12"


def test_the_interval_is_about_ten_seconds_by_default_and_no_progress_is_silent(tmp_path, monkeypatch):
    monkeypatch.delenv("LABTAX_PROGRESS_INTERVAL", raising=False)
    assert interval_from_env() == 10.0
    for bad in ("", "0", "-3", "nan", "soon"):
        monkeypatch.setenv("LABTAX_PROGRESS_INTERVAL", bad)
        assert interval_from_env() == 10.0
    monkeypatch.setenv("LABTAX_PROGRESS_INTERVAL", "2.5")
    assert interval_from_env() == 2.5
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    with FakeOpenAI(latency=0.05) as fake:
        proc = run_labtax(
            "generate", "-n", "2", "--no-progress", "--output", str(tmp_path / "out"), cwd=root, env=_env(fake, "0.1")
        )
    assert proc.returncode == 0, proc.stderr
    assert "progress " not in proc.stderr


def test_a_terminal_gets_bars_not_lines(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    exe = str(Path(sys.executable).parent / "labtax")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a 120-column terminal
    with FakeOpenAI(latency=0.05) as fake:
        env = {**os.environ, **_env(fake, "0.1")}
        proc = subprocess.Popen(
            [exe, "generate", "-n", "2", "--output", str(tmp_path / "out")],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=slave,
            stdin=subprocess.DEVNULL,
        )
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        proc.communicate(timeout=120)
    os.close(master)
    assert proc.returncode == 0, seen
    text = seen.decode("utf-8", "replace")
    assert "call/s" in text or "call]" in text  # tqdm's bars
    assert not re.search(r"^progress \d", text, flags=re.M)


def test_a_line_says_done_of_planned_rate_accepted_and_eta():
    now = [100.0]
    out = io.StringIO()
    plan = Plan(question=10, answer=10)
    plan.samples = 5  # two leaves of 5 samples: candidates 0-4 of each are the plan, 5 and up are retries
    plain = PlainProgress(["question", "answer"], plan, leaves=3, interval=5, stream=out, clock=lambda: now[0])
    # no ETA until it means something (not "unknown", not a floor beside a run of minutes)
    assert plain.line() == "progress 0 s, teacher calls by stage: question 0/10, answer 0/10"
    plain.advance("question", 0)
    now[0] += 1
    assert "ETA" not in plain.line()  # one call of twenty says nothing about the rest
    for index in (1, 2, 3, 4, 0, 1, 2):
        plain.advance("question", index)
    plain.advance("answer", 0)
    plain.advance("answer", 1)
    now[0] += 9  # 10 s in: 10 planned calls done, 10 left, 1 call/s
    plain.leaf_done(2)

    class Result:
        accepted = ["a", "b", "c"]

    plain.leaf_done(Result())
    assert plain.line() == (
        "progress 10 s, teacher calls by stage: question 8/10 (48/min), answer 2/10 (13/min); "
        "2 of 3 leaves done, 5 samples accepted; ETA about 10 s"
    )
    plain.advance("question", 5)  # rejected candidates' replacements: retries, not past the plan
    plain.advance("question", 6)
    plain.advance("answer", 1_000_000)  # calibration: a check of the gate
    plain.advance("answer", 2 + 500_000)  # a consistency resample: a check too
    assert plain.line().startswith(
        "progress 10 s, teacher calls by stage: question 8/10 +2 retries (1.0/s), answer 2/10 +2 checks (27/min); "
    )
    assert plain.line().endswith("ETA about 10 s")  # 10 planned calls left, each costing 1.4 calls, at 1.4 calls/s
    for index in (3, 4):
        plain.advance("question", index)
    for index in (2, 3, 4, 0, 1, 2, 3, 4):
        plain.advance("answer", index)
    assert plain.line().endswith("; planned calls done, retrying rejected candidates")
    plain.emit(final=True)
    assert out.getvalue() == (
        "progress 10 s (done), teacher calls by stage: question 10/10 +2 retries, answer 10/10 +2 checks; "
        "2 of 3 leaves done, 5 samples accepted\n"
    )
    unplanned = PlainProgress(["qa"], stream=out, clock=lambda: now[0])
    unplanned.advance("qa")
    unplanned.advance("surprise")  # a stage nobody announced is counted, not dropped
    assert unplanned.line() == "progress 0 s, teacher calls by stage: qa 1, surprise 1"
    # a plan without its samples per leaf (a plain dict): calls past the total are still retries, never "3/2"
    unknown = PlainProgress(["qa"], {"qa": 2}, stream=out, clock=lambda: now[0])
    for _ in range(3):
        unknown.advance("qa")
    assert unknown.line() == (
        "progress 0 s, teacher calls by stage: qa 2/2 +1 retry; planned calls done, retrying rejected candidates"
    )
    assert call_kind(4, 5) == "plan" and call_kind(5, 5) == "retry" and call_kind(1_000_003, 5) == "check"
    assert expected_calls([], 3).samples == 3
    assert span(59.4) == "59 s" and span(185) == "3 min 05 s" and span(3720) == "1 h 02 min"
    assert (rate(12.34), rate(2.06), rate(0.5), rate(0.01), rate(0.001)) == (
        "12/s",
        "2.1/s",
        "30/min",
        "0.6/min",
        "0.06/min",
    )


def test_the_timer_thread_prints_and_stops(monkeypatch):
    out = io.StringIO()
    plain = PlainProgress(["qa"], interval=0.05, stream=out).start()
    plain.advance("qa")
    import time

    deadline = time.monotonic() + 60  # the timer's lines, however busy the machine: an event, not a fixed sleep
    while len(out.getvalue().splitlines()) < 2:
        assert time.monotonic() < deadline, out.getvalue()
        time.sleep(0.01)
    plain.close()
    lines = out.getvalue().splitlines()
    assert len(lines) >= 3 and lines[-1].startswith("progress 0 s (done), teacher calls by stage: qa 1")
    count = len(lines)
    time.sleep(0.15)
    assert len(out.getvalue().splitlines()) == count  # closed: no more lines
    quiet = io.StringIO()
    short = PlainProgress(["qa"], interval=60, stream=quiet).start()
    short.close()
    assert quiet.getvalue() == ""  # a run shorter than the interval adds nothing to the log


def test_stage_progress_picks_lines_without_a_terminal(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    progress = StageProgress(["qa"], totals={"qa": 3}, leaves=1, interval=60)
    progress.advance("qa")
    progress.leaf_done(1)
    assert progress._plain is not None and progress._plain.line().startswith(
        "progress 0 s, teacher calls by stage: qa 1/3"
    )
    progress.close()
    off = StageProgress(["qa"], enabled=False)
    off.advance("qa")
    off.close()
    assert off._plain is None and not off._bars
