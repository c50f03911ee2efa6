"""`labtax generate --executor ray` on a real local Ray cluster against the scripted fake endpoint: the same
bytes as the local run, the endpoint limit held across actors, and (slow) a worker killed mid-leaf, the
driver killed with kill -9 then re-run, and joining a running cluster with --ray-address.

Every test gives Ray a short temp dir of its own (RAY_TMPDIR: Ray's unix socket paths must stay short) and
ends every process of that cluster by PID afterwards: the ones naming the temp dir and their descendants."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from .conftest import run_labtax
from .fake_openai import FakeOpenAI, Reply, stage_of
from .test_scale import assert_same_output, cache_keys, env, generate, mixed_teacher, taxonomy

pytest.importorskip("ray")

BIN = Path(sys.executable).parent
STARTUP = 300  # a Ray cluster takes 5-40 s to start on a busy 2-core machine


def ray_args(n: int, *more: str, concurrency: int | None = 4) -> list[str]:
    """`labtax generate` on Ray as test_scale.generate runs it locally (--keep-unvetted: these tests compare
    files, not the gate's verdicts)."""
    limit = ["--concurrency", str(concurrency)] if concurrency else []
    return ["generate", "-n", str(n), "--no-progress", "--keep-unvetted", "--executor", "ray", *more, *limit]


class Endpoint:
    """mixed_teacher with its latency inside the responder, so requests in flight are counted at the server."""

    def __init__(self, latency: float):
        self.latency = latency
        self.lock = threading.Lock()
        self.in_flight = self.peak = 0

    def __call__(self, request: dict):
        if "messages" not in request:  # a body cut off by a killed worker
            return Reply(status=400)
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            time.sleep(self.latency)
            return mixed_teacher(request)
        finally:
            with self.lock:
                self.in_flight -= 1


def requests(fake: FakeOpenAI, start: int = 0) -> list[str]:
    """The requests the endpoint got from the `start`th on, each as canonical JSON (one per cache key); a body
    cut off by a killed process (never answered, so never cached) is left out."""
    with fake.lock:
        return [json.dumps(r, sort_keys=True) for r in fake.requests[start:] if "messages" in r]


# --- Ray's processes, found and ended by PID ----------------------------------------------------------------


def _processes() -> dict[int, tuple[int, str, str, str]]:
    """pid -> (parent pid, state, command line, environment) of every process we can read."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes().decode(errors="replace")
        except OSError:
            environ = ""
        fields = stat.rsplit(")", 1)[1].split()
        found[int(entry)] = (int(fields[1]), fields[0], cmdline, environ)
    return found


def ray_processes(marker: str) -> dict[int, str]:
    """Live processes of one cluster: those whose command line or environment (RAY_TMPDIR, inherited by every
    process a driver's cluster starts, orphaned agents too) names `marker` (its temp dir, its port), and all
    their descendants (workers and agents retitle themselves `ray::...`, dropping their arguments)."""
    table = _processes()
    chosen = {pid for pid, (_, _, cmd, env) in table.items() if (marker in cmd or marker in env) and pid != os.getpid()}
    grew = True
    while grew:
        children = {pid for pid, (parent, *_) in table.items() if parent in chosen} - chosen
        chosen |= children
        grew = bool(children)
    return {pid: table[pid][2] for pid in chosen if table[pid][1] != "Z"}


def end_ray(marker: str) -> list[str]:
    """SIGKILL every live process of the cluster; the command lines of those that were still there."""
    left = ray_processes(marker)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return sorted(left.values())


def wait_until_gone(marker: str, seconds: float = 20) -> dict[int, str]:
    deadline = time.monotonic() + seconds
    while (left := ray_processes(marker)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


@pytest.fixture
def ray_tmp():
    folder = tempfile.mkdtemp(prefix="lr", dir="/tmp")
    yield folder
    end_ray(folder)
    subprocess.run(["rm", "-rf", folder], check=False)


def ray_env(fake: FakeOpenAI, folder: str) -> dict:
    return {**env(fake), "RAY_TMPDIR": folder}


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# --- the default run: one local cluster, two actors ---------------------------------------------------------


def test_ray_run_gives_the_local_runs_bytes_and_holds_each_endpoints_limit(tmp_path, ray_tmp):
    """With a separate judge on its own endpoint: each endpoint gets its own limit across the actors, the judge
    only judge stages, and the result is the local run's with the same judge."""
    root = taxonomy(tmp_path / "tax", copies=2)
    home_token = Path.home() / ".ray" / "auth_token"  # Ray's default for a new cluster's token
    had_token = home_token.exists()
    endpoint, judging = Endpoint(latency=0.02), Endpoint(latency=0.02)
    with FakeOpenAI(responder=endpoint) as fake, FakeOpenAI(responder=judging, model="fake-judge") as judge:
        with_judge = ("--judge-base-url", judge.base_url, "--judge-model", "fake-judge")
        generate(root, fake, tmp_path / "single", *with_judge)
        single_calls, judged = fake.calls(), judge.calls()
        endpoint.peak = judging.peak = 0
        proc = run_labtax(
            *ray_args(2, "--ray-actors", "2", concurrency=3),
            *("--output", str(tmp_path / "ray"), *with_judge),
            cwd=root,
            env=ray_env(fake, ray_tmp),
            timeout=STARTUP,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
        made, judged_again = requests(fake, single_calls), requests(judge, judged)
        assert sorted(made) == sorted(requests(fake)[:single_calls])  # every call once, by one actor or the other
        assert sorted(judged_again) == sorted(requests(judge)[:judged])
        assert judged and {stage_of(r) for r in judge.requests} <= {"judge_question", "judge_pair", "judge_knowledge"}
    assert "ray: 2 actors on 1 node" in proc.stdout
    assert f"ray: teacher endpoint: requests {len(made)}," in proc.stdout
    assert f"ray: judge endpoint: requests {len(judged_again)}," in proc.stdout
    assert fake.base_url not in proc.stdout and judge.base_url not in proc.stdout  # URLs can carry credentials
    assert 1 < endpoint.peak <= 3 and 1 < judging.peak <= 3  # each limit holds across both actors, at the endpoint
    assert_same_output(tmp_path / "single", tmp_path / "ray")
    assert cache_keys(tmp_path / "ray") == cache_keys(tmp_path / "single")
    assert not (tmp_path / "ray" / ".labtax-staging").exists()
    assert wait_until_gone(ray_tmp) == {}  # the cluster this run started ended with it
    assert home_token.exists() == had_token  # its token lived in the run's environment, not in the home directory


def test_ray_refuses_the_embedded_teacher(tmp_path, ray_tmp):
    root = taxonomy(tmp_path / "tax", copies=0)
    proc = run_labtax(
        "generate", "--executor", "ray", "--output", str(tmp_path / "out"), cwd=root, env={"RAY_TMPDIR": ray_tmp}
    )
    assert proc.returncode == 2 and "needs an OpenAI-compatible endpoint teacher" in proc.stderr
    assert ray_processes(ray_tmp) == {}  # refused before any cluster was started


def test_ray_refuses_an_embedded_judge(tmp_path, ray_tmp):
    root = taxonomy(tmp_path / "tax", copies=0)
    with FakeOpenAI(responder=mixed_teacher) as fake:
        proc = run_labtax(
            *("generate", "--executor", "ray", "--judge-model", "embedded", "--output", str(tmp_path / "out")),
            cwd=root,
            env=ray_env(fake, ray_tmp),
        )
        assert fake.calls() == 0
    assert proc.returncode == 2 and "needs the separate judge on an OpenAI-compatible endpoint" in proc.stderr
    assert ray_processes(ray_tmp) == {}  # refused before any cluster was started


# --- faults (slow) -------------------------------------------------------------------------------------------


def _start(
    root: Path, fake: FakeOpenAI, folder: str, output: Path, *extra: str, env: dict | None = None
) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "labtax"), *ray_args(3, "--ray-actors", "2"), "--output", str(output), *extra],
        cwd=root,
        env={**os.environ, **ray_env(fake, folder), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_a_worker_killed_mid_leaf_is_restarted_and_its_leaf_retried(tmp_path, ray_tmp):
    root = taxonomy(tmp_path / "tax", copies=2)
    with FakeOpenAI(responder=Endpoint(latency=0.05)) as fake:
        generate(root, fake, tmp_path / "single", "-n", "3")
        single_calls = fake.calls()
        proc = _start(root, fake, ray_tmp, tmp_path / "ray")
        wait_for(lambda: fake.calls() >= single_calls + single_calls // 3, STARTUP, "a third of the calls")
        workers = [pid for pid, cmd in ray_processes(ray_tmp).items() if cmd.startswith("ray::LeafWorker")]
        assert workers, ray_processes(ray_tmp)
        os.kill(workers[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=STARTUP)
        assert proc.returncode == 0, out + err[-3000:]
        made = requests(fake, single_calls)
        assert set(made) == set(requests(fake)[:single_calls])  # nothing new was asked, only repeats of lost calls
        assert len(made) <= single_calls + 4  # at most the requests in flight (--concurrency) were lost
    assert_same_output(tmp_path / "single", tmp_path / "ray", resumed=True)
    assert len(cache_keys(tmp_path / "ray")) == single_calls


@pytest.mark.slow
def test_kill_9_of_the_driver_then_rerun_loses_only_calls_in_flight(tmp_path, ray_tmp):
    root = taxonomy(tmp_path / "tax", copies=2)
    with FakeOpenAI(responder=Endpoint(latency=0.05)) as fake:
        generate(root, fake, tmp_path / "single", "-n", "3")
        single_calls = fake.calls()
        proc = _start(root, fake, ray_tmp, tmp_path / "ray")
        wait_for(lambda: fake.calls() >= single_calls + single_calls // 2, STARTUP, "half of the calls")
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        # The cluster notices its driver is gone and stops the actors: the calls stop (2 s without one), however
        # long a busy machine takes to notice; an orphaned actor that kept calling would never let them.
        quiet_since, at_kill = time.monotonic(), fake.calls()
        deadline = quiet_since + 120
        while time.monotonic() - quiet_since < 2:
            assert time.monotonic() < deadline, "the actors kept calling after their driver was killed"
            time.sleep(0.1)
            if fake.calls() != at_kill:
                quiet_since, at_kill = time.monotonic(), fake.calls()
        end_ray(ray_tmp)  # what the killed driver's own cluster left (a laptop's reboot, a CI job's end)
        rerun = run_labtax(
            *ray_args(3, "--ray-actors", "2"),
            *("--output", str(tmp_path / "ray")),
            cwd=root,
            env=ray_env(fake, ray_tmp),
            timeout=STARTUP,
        )
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr[-3000:]
        made = requests(fake, single_calls)
        assert set(made) == set(requests(fake)[:single_calls])
        assert len(made) <= single_calls + 4  # wasted: the requests in flight (--concurrency) at the kill
    assert_same_output(tmp_path / "single", tmp_path / "ray", resumed=True)
    assert len(cache_keys(tmp_path / "ray")) == single_calls


@pytest.mark.slow
def test_joins_a_running_cluster_with_ray_address(tmp_path, ray_tmp):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The cluster's token in its temp dir, not ~/.ray/auth_token: a test leaves nothing in the home directory.
    home_token = Path.home() / ".ray" / "auth_token"
    had_token = home_token.exists()
    token = {"RAY_AUTH_TOKEN_PATH": str(Path(ray_tmp) / "auth_token")}
    Path(token["RAY_AUTH_TOKEN_PATH"]).write_text(secrets.token_hex(32))
    started = subprocess.run(
        [str(BIN / "ray"), "start", "--head", "--num-cpus", "2", "--node-ip-address", "127.0.0.1"]
        + ["--port", str(port), "--temp-dir", ray_tmp, "--include-dashboard", "false", "--disable-usage-stats"],
        capture_output=True,
        text=True,
        timeout=STARTUP,
        env={**os.environ, **token},
    )
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        root = taxonomy(tmp_path / "tax", copies=0)
        with FakeOpenAI(responder=mixed_teacher) as fake:
            generate(root, fake, tmp_path / "single")
            proc = run_labtax(
                *ray_args(2, "--ray-address", f"127.0.0.1:{port}", concurrency=None),
                *("--output", str(tmp_path / "ray")),
                cwd=root,
                env={**env(fake), "RAY_AUTH_MODE": "token", **token},  # a `ray start` cluster wants its token
                timeout=STARTUP,
            )
        assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
        assert_same_output(tmp_path / "single", tmp_path / "ray")
        assert ray_processes(ray_tmp), "the cluster it joined is still running"
        assert home_token.exists() == had_token
    finally:
        end_ray(f":{port} ")  # the client server names only the port
        end_ray(ray_tmp)


CLUSTER = """
import json, os, sys
import ray
from ray.cluster_utils import Cluster

folder = sys.argv[1]
os.makedirs(os.path.join(folder, "ray"), exist_ok=True)  # Ray writes the cluster's address there first
node = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False}
cluster = Cluster(initialize_head=True, head_node_args=node)
worker = cluster.add_node(**{k: v for k, v in node.items() if k != "include_dashboard"})
cluster.wait_for_nodes()
print(json.dumps({"address": cluster.address}), flush=True)
for line in sys.stdin:
    if line.strip() == "remove":
        cluster.remove_node(worker, allow_graceful=False)
        print("removed", flush=True)
cluster.shutdown()
"""


@pytest.mark.slow
def test_a_node_removed_mid_run_loses_only_its_calls_in_flight(tmp_path, ray_tmp):
    """Two nodes on one machine (ray.cluster_utils.Cluster), an actor on each; the worker node goes away
    mid-run: its actor restarts on the head node, its leaves are retried from the cache, same bytes."""
    cluster = subprocess.Popen(
        [sys.executable, "-c", CLUSTER, ray_tmp],
        env={**os.environ, "RAY_TMPDIR": ray_tmp},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        address = json.loads(cluster.stdout.readline())["address"]
        root = taxonomy(tmp_path / "tax", copies=2)
        with FakeOpenAI(responder=Endpoint(latency=0.05)) as fake:
            generate(root, fake, tmp_path / "single", "-n", "3")
            single_calls = fake.calls()
            # Ray rewrites a 127.0.0.1 address to the machine's IP before connecting (ray-project/ray#59110),
            # where these nodes do not listen; this keeps the driver's lookup on the loopback address.
            loopback = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
            proc = _start(root, fake, ray_tmp, tmp_path / "ray", "--ray-address", address, env=loopback)
            wait_for(
                lambda: fake.calls() >= single_calls + single_calls // 3 or proc.poll() is not None,
                STARTUP,
                "a third of the calls",
            )
            assert proc.poll() is None, proc.communicate()
            cluster.stdin.write("remove\n")
            cluster.stdin.flush()
            assert cluster.stdout.readline().strip() == "removed"
            out, err = proc.communicate(timeout=STARTUP)
            assert proc.returncode == 0, out + err[-3000:]
            made = requests(fake, single_calls)
            assert set(made) == set(requests(fake)[:single_calls])  # nothing new asked, only lost calls repeated
            assert len(made) <= single_calls + 4  # at most the requests in flight (--concurrency) were lost
        assert "ray: 2 actors on 2 nodes" in out
        assert_same_output(tmp_path / "single", tmp_path / "ray", resumed=True)
        assert len(cache_keys(tmp_path / "ray")) == single_calls
    finally:
        cluster.stdin.close()
        cluster.wait(timeout=60)
