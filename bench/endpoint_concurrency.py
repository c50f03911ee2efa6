"""`labtax generate` against a real llama.cpp server at concurrency 1, 2 and 8 (and, with --embedded, the same run
with the embedded teacher beside it): wall time, calls, accepted, rejection reasons, how many calls the server was
measured to decode at once (teacher/capacity.py), and calls lost to timeouts (teacher_error). llama.cpp's server
answers one request at a time, so more in flight only queue there; this measures what that costs and whether
queued calls time out.

    python bench/endpoint_concurrency.py --python /tmp/llama/bin/python [--leaf PATH] [-n 2] [--embedded] [--calibrate]

`--python`: a python with llama-cpp-python[server]; without it, a venv with the wheel in ../shared/wheels is made
in a temporary folder first (its dependencies from PyPI, about a minute). The server serves the SmolLM2
GGUF labtax's embedded teacher converts. Every run starts with an empty output (no cache), one after another.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.test_llama_cpp import free_port, gguf  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=None)
    parser.add_argument("--leaf", default="compositional_skills/writing/rewriting/plain_language")
    parser.add_argument("-n", type=int, default=2)
    parser.add_argument("--levels", default="1,2,8")
    parser.add_argument("--embedded", action="store_true", help="first, the same run with the embedded teacher")
    parser.add_argument("--calibrate", action="store_true", help="the whole gate: per-leaf calibration on")
    args = parser.parse_args()
    if args.python is None:
        from tests.test_llama_cpp import WHEEL

        venv = Path(tempfile.mkdtemp(prefix="llama-venv-"))
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        args.python = str(venv / "bin" / "python")
        subprocess.run([args.python, "-m", "pip", "install", "--quiet", f"{WHEEL}[server]"], check=True)
    port = free_port()
    command = [args.python, "-m", "llama_cpp.server", "--model", str(gguf()), "--model_alias", "smollm2"]
    server = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "8192"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/v1"
    labtax = str(Path(sys.executable).parent / "labtax")
    rows = []
    try:
        import urllib.request

        for _ in range(600):
            try:
                urllib.request.urlopen(f"{base}/models", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
        runs = [("embedded", 8)] if args.embedded else []
        runs += [("llama.cpp", level) for level in map(int, args.levels.split(","))]
        gate = ["--calibrate"] if args.calibrate else ["--no-calibrate"]
        for teacher, level in runs:
            out = Path(tempfile.mkdtemp(prefix=f"labtax-c{level}-"))
            endpoint = ["--base-url", base, "--model", "smollm2"] if teacher == "llama.cpp" else []
            started = time.monotonic()
            proc = subprocess.run(
                [labtax, "generate", args.leaf, "-n", str(args.n), "--max-attempts", "2", *gate]
                + ["--keep-unvetted", "--no-progress", *endpoint]
                + ["--concurrency", str(level), "--output", str(out)],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
            )
            wall = time.monotonic() - started
            summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").is_file() else {}
            totals = summary.get("totals", {})
            note = next((line for line in proc.stderr.splitlines() if "decoded about" in line), "")
            rows.append(
                {
                    "teacher": teacher,
                    "concurrency": level,
                    "measured": note.split("decoded about ", 1)[1].split(" calls", 1)[0] if note else "",
                    "vetted": summary.get("totals", {}).get("accepted", 0) - totals.get("held_back", 0),
                    "exit": proc.returncode,
                    "wall_s": round(wall, 1),
                    "teacher_calls": totals.get("teacher_calls"),
                    "accepted": totals.get("accepted"),
                    "rejected": totals.get("rejected"),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    finally:
        server.kill()
        server.wait()
    print("| teacher | concurrency | decoded at once | exit | wall | teacher calls | accepted (vetted) | rejected |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted((r["rejected"] or {}).items())) or "none"
        print(
            f"| {r['teacher']} | {r['concurrency']} | {r['measured'] or '-'} | {r['exit']} | {r['wall_s']} s "
            f"| {r['teacher_calls']} | {r['accepted']} ({r['vetted']}) | {reasons} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
