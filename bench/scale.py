"""Benchmark: generation past one process against the scripted OpenAI-compatible fake (50 ms per call).

Runs the real `labtax generate` command (fresh processes, fresh output folders, cold caches) on one synthetic
taxonomy, one way after the other:

  * single process (`--concurrency C`);
  * 2 shards: `--shard 1/2` and `--shard 2/2` started together (2 processes, C/2 each: C at the endpoint, as
    the single process; then C each), then `labtax merge`;
  * Ray with 1 and with 2 actors (`--executor ray --ray-actors K --concurrency C`: one endpoint limit of C across
    the actors; the command starts its own local cluster), and 2 actors with the limit at 2C, the budget the two
    shards had between them;
  * kill -9 mid-run, then the same command again, for the single process and for Ray (2 actors).

The fake runs in its own process and counts, at the endpoint: requests, unique requests (one per cache key),
requests in flight (peak, and the mean over the calling window), and when the first request arrived. Reported:
calls/s over the calling window (first to last request), wall time of the command(s), time from launch to the
first request, and after kill -9: requests made by both runs / unique keys (1.00 = nothing was asked twice).
The merged and Ray outputs are checked against the single run's bucket files (byte-identical).

Usage: .venv/bin/python bench/scale.py [--quick] [--latency 0.05] [--concurrency 32] [--copies 4] [--samples 12]
Needs ray for the Ray rows (pip install 'labtax[ray]'); without it they are skipped and the script says so.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LABTAX = Path(sys.executable).parent / "labtax"
BUCKETS = (
    "knowledge.jsonl",
    "foundational.jsonl",
    "compositional.jsonl",
    "review/rejected.jsonl",
    "eval/heldout.jsonl",
    "phases/knowledge_train_msgs.jsonl",
    "phases/skills_train_msgs.jsonl",
)


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- the server (its own process) --------------


def serve(latency: float) -> None:
    """`--serve`: the fake with the latency inside the responder, so requests in flight are counted here."""
    gen = load("labtax_bench_generate", REPO / "bench" / "generate.py")
    fake_module = gen.load_fake()
    answer = gen.bench_responder(fake_module)
    lock = threading.Lock()
    spans: list[tuple[float, float]] = []
    keys: set[str] = set()

    def responder(request: dict):
        if "messages" not in request:  # a body cut off by a killed client
            return fake_module.Reply(status=400)
        start = time.time()
        time.sleep(latency)
        with lock:
            spans.append((start, time.time()))
            keys.add(hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest())
        return answer(request)

    fake = fake_module.FakeOpenAI(responder=responder, latency=0.0)
    fake.server.RequestHandlerClass.disable_nagle_algorithm = True
    fake.server.RequestHandlerClass.protocol_version = "HTTP/1.1"
    fake.server.handle_error = lambda request, address: None  # a killed client's broken pipe is expected here
    with fake:
        print(json.dumps({"base_url": fake.base_url}), flush=True)
        for line in sys.stdin:
            with lock:
                if line.strip() == "reset":
                    spans.clear()
                    keys.clear()
                    print("{}", flush=True)
                elif line.strip() == "stats":
                    print(json.dumps(summarise(spans, len(keys))), flush=True)


def summarise(spans: list[tuple[float, float]], unique: int) -> dict:
    if not spans:
        return {"requests": 0, "unique": unique}
    first, last = min(s for s, _ in spans), max(e for _, e in spans)
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    busy = sum(e - s for s, e in spans)
    return {
        "requests": len(spans),
        "unique": unique,
        "first": first,
        "last": last,
        "peak": peak,
        "mean": busy / (last - first) if last > first else 0.0,
    }


class Server:
    def __init__(self, latency: float):
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", "--latency", str(latency)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.base_url = json.loads(self.proc.stdout.readline())["base_url"]

    def ask(self, what: str) -> dict:
        self.proc.stdin.write(what + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


# ---------------------------------------------------------------- the taxonomy and the runs ------------------


def make_taxonomy(root: Path, copies: int) -> Path:
    """bench/generate.py's copies of the repo's nine leaves, every seed question marked with its copy too: the
    gate's calibration judges held-out seeds without the task, so copies would otherwise share calls."""
    gen = load("labtax_bench_generate", REPO / "bench" / "generate.py")
    gen.make_taxonomy(root, copies)
    for leaf in root.rglob("qna.yaml"):
        match = re.search(r"_v(\d+)$", leaf.parent.name)
        if match:
            text = leaf.read_text(encoding="utf-8")
            leaf.write_text(re.sub(r"(question: [|>]-?\n)(\s+)", rf"\1\2(copy {match.group(1)}) ", text), "utf-8")
    return root


class Bench:
    def __init__(self, root: Path, work: Path, server: Server, concurrency: int, samples: int):
        self.root, self.work, self.server = root, work, server
        self.concurrency, self.samples = concurrency, samples
        self.ray_tmp = tempfile.mkdtemp(prefix="lb", dir="/tmp")  # Ray's socket paths must stay short
        self.env = {
            **os.environ,
            "OPENAI_BASE_URL": server.base_url,
            "OPENAI_API_KEY": "bench",
            "LABTAX_TEACHER_MODEL": "fake-teacher",
            "RAY_TMPDIR": self.ray_tmp,
        }
        self.markers: list[str] = []

    def ray_head(self) -> str:
        """A running cluster to join (`ray start --head`, 2 CPUs, 127.0.0.1): its address."""
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.markers.append(f":{port}\x00")  # the client server names only the port
        # the cluster's token in our temp dir, not ~/.ray/auth_token: a bench leaves nothing in the home directory
        self.env["RAY_AUTH_TOKEN_PATH"] = str(Path(self.ray_tmp) / "auth_token")
        Path(self.env["RAY_AUTH_TOKEN_PATH"]).write_text(secrets.token_hex(32))
        subprocess.run(
            [str(LABTAX.parent / "ray"), "start", "--head", "--num-cpus", "2", "--node-ip-address", "127.0.0.1"]
            + ["--port", str(port), "--temp-dir", self.ray_tmp, "--include-dashboard", "false"]
            + ["--disable-usage-stats"],
            capture_output=True,
            check=True,
            env=self.env,
        )
        self.env["RAY_AUTH_MODE"] = "token"  # such a cluster wants its token
        return f"127.0.0.1:{port}"

    def args(self, output: Path, *extra: str) -> list[str]:
        return [str(LABTAX), "generate", "-n", str(self.samples), "--no-progress", "--output", str(output), *extra]

    def launch(self, output: Path, *extra: str) -> subprocess.Popen:
        return subprocess.Popen(
            self.args(output, *extra), cwd=self.root, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    def run(self, name: str, outputs_and_extras: list[tuple[Path, tuple[str, ...]]], limit: int) -> dict:
        """Start the commands together, wait for all; the endpoint's view of them. `limit`: the requests in flight
        the commands may put on the endpoint between them."""
        self.server.ask("reset")
        launched = time.time()
        procs = [self.launch(output, *extra) for output, extra in outputs_and_extras]
        for proc in procs:
            out, err = proc.communicate()
            if proc.returncode != 0:
                sys.exit(f"{name}: labtax exited {proc.returncode}\n{out.decode()}\n{err.decode()[-3000:]}")
        wall = time.time() - launched
        if not self.markers:  # a joined cluster keeps running; a cluster a run started ends with it
            self.end_ray()
        stats = self.server.ask("stats")
        window = stats["last"] - stats["first"]
        return {
            "name": name,
            "limit": limit,
            "calls": stats["requests"],
            "rate": stats["requests"] / window if window else 0.0,
            "peak": stats["peak"],
            "mean": stats["mean"],
            "first": stats["first"] - launched,
            "wall": wall,
        }

    def killed(self, name: str, output: Path, expected: int, *extra: str) -> dict:
        """kill -9 at about half the calls, then the same command again: requests / unique keys."""
        self.server.ask("reset")
        proc = self.launch(output, *extra)
        deadline = time.time() + 600
        while self.server.ask("stats")["requests"] < expected // 2 and time.time() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        time.sleep(2)
        self.end_ray()
        at_kill = self.server.ask("stats")["requests"]
        again = subprocess.run(self.args(output, *extra), cwd=self.root, env=self.env, capture_output=True)
        if again.returncode != 0:
            sys.exit(f"{name}: the re-run exited {again.returncode}\n{again.stderr.decode()[-3000:]}")
        self.end_ray()
        stats = self.server.ask("stats")
        return {"name": name, "at_kill": at_kill, "requests": stats["requests"], "unique": stats["unique"]}

    def end_ray(self) -> None:
        """End what a Ray run left (a killed driver's cluster): by PID, the processes naming our temp dir (in
        their arguments or, inherited, in RAY_TMPDIR) and their descendants."""
        table = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                    cmd = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
                    cmd += Path(f"/proc/{entry}/environ").read_bytes().decode(errors="replace")  # RAY_TMPDIR
                except OSError:
                    continue
                table[int(entry)] = (int(stat[1]), stat[0], cmd)
        markers = [self.ray_tmp, *self.markers]
        chosen = {pid for pid, (_, _, cmd) in table.items() if any(m in cmd for m in markers)}
        while children := {p for p, (parent, _, _) in table.items() if parent in chosen} - chosen:
            chosen |= children
        for pid in chosen:
            if table[pid][1] != "Z":
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def close(self) -> None:
        self.end_ray()
        shutil.rmtree(self.ray_tmp, ignore_errors=True)


def same_buckets(a: Path, b: Path) -> bool:
    return all((a / name).read_bytes() == (b / name).read_bytes() for name in BUCKETS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight at the endpoint")
    parser.add_argument("--copies", type=int, default=4, help="copies of each of the 9 repo leaves")
    parser.add_argument("--samples", type=int, default=12, help="accepted samples per leaf")
    parser.add_argument("--quick", action="store_true", help="1 copy, 3 samples: a smoke run")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.latency)
    if args.quick:
        args.copies, args.samples = 1, 3
    has_ray = importlib.util.find_spec("ray") is not None
    c = args.concurrency

    with tempfile.TemporaryDirectory(prefix="labtax-bench-scale-") as tmp:
        work = Path(tmp)
        root = make_taxonomy(work / "taxonomy", args.copies)
        leaves = len(list(root.rglob("qna.yaml")))
        print(
            f"{leaves} leaves, {args.samples} samples each, fake endpoint at {args.latency * 1000:.0f} ms per call "
            f"in its own process; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start"
        )
        server = Server(args.latency)
        bench = Bench(root, work, server, c, args.samples)
        rows, kills = [], []
        try:
            rows.append(
                bench.run(f"single process, --concurrency {c}", [(work / "single", ("--concurrency", str(c)))], c)
            )
            half = max(1, c // 2)
            shards = [(work / f"half-{i}", ("--concurrency", str(half), "--shard", f"{i}/2")) for i in (1, 2)]
            rows.append(bench.run(f"2 shards (2 processes), --concurrency {half} each", shards, 2 * half))
            shards = [(work / f"shard-{i}", ("--concurrency", str(c), "--shard", f"{i}/2")) for i in (1, 2)]
            rows.append(bench.run(f"2 shards (2 processes), --concurrency {c} each", shards, 2 * c))
            started = time.time()
            merged = subprocess.run(
                [str(LABTAX), "merge", str(work / "merged"), str(work / "shard-1"), str(work / "shard-2")],
                capture_output=True,
            )
            rows[-1]["merge"] = time.time() - started
            assert merged.returncode == 0 and same_buckets(work / "single", work / "merged"), merged.stderr
            if has_ray:
                for actors, limit in ((1, c), (2, c), (2, 2 * c)):
                    output = work / f"ray-{actors}-{limit}"
                    extra = ("--executor", "ray", "--ray-actors", str(actors), "--concurrency", str(limit))
                    name = f"Ray, {actors} actor{'s' if actors > 1 else ''}, --concurrency {limit} in all"
                    rows.append(bench.run(name, [(output, extra)], limit))
                    assert same_buckets(work / "single", output), output
                address = bench.ray_head()
                extra = ("--executor", "ray", "--ray-actors", "2", "--concurrency", str(c), "--ray-address", address)
                name = f"Ray, 2 actors, --concurrency {c} in all, joining a running cluster"
                rows.append(bench.run(name, [(work / "ray-joined", extra)], c))
                assert same_buckets(work / "single", work / "ray-joined")
                bench.end_ray()
                bench.markers.clear()
                bench.env.pop("RAY_AUTH_MODE")
                bench.env.pop("RAY_AUTH_TOKEN_PATH")
            expected = rows[0]["calls"]
            kills.append(bench.killed("single process", work / "k-single", expected, "--concurrency", str(c)))
            if has_ray:
                extra = ("--executor", "ray", "--ray-actors", "2", "--concurrency", str(c))
                kills.append(bench.killed("Ray, 2 actors", work / "k-ray", expected, *extra))
        finally:
            bench.close()
            server.close()

    print("\n| run | calls | calls/s | of the limit | in flight (peak / mean) | launch to first request | wall |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        merge = f" + merge {r['merge']:.1f} s" if "merge" in r else ""
        share = r["rate"] / (r["limit"] / args.latency)
        print(
            f"| {r['name']} | {r['calls']} | {r['rate']:.0f} | {share:.0%} of {r['limit'] / args.latency:.0f} | {r['peak']} / {r['mean']:.1f} | {r['first']:.1f} s | {r['wall']:.1f} s{merge} |"
        )
    print(
        "\n| kill -9 at half the calls, then re-run | requests at the kill | requests in all | unique keys | asked twice | requests / unique |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for k in kills:
        twice = k["requests"] - k["unique"]
        print(
            f"| {k['name']} | {k['at_kill']} | {k['requests']} | {k['unique']} | {twice} | {k['requests'] / k['unique']:.3f} |"
        )
    if not has_ray:
        print("\nRay rows skipped: ray is not installed (pip install 'labtax[ray]')")
    print(f"\nlimit at --concurrency {c}: {c / args.latency:.0f} calls/s per {c} requests in flight")


if __name__ == "__main__":
    main()
