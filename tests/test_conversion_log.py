"""The GGUF conversion in a log: two lines (the start, and the end with its time), never tqdm's carriage-return
frames; in a terminal transformers' bar stays. The conversion itself is replaced by a stand-in that draws the
same bar as transformers does (its module's own tqdm), so the test takes no model time."""

from __future__ import annotations

import io
import sys

import pytest

from labtax.teacher import smollm
from labtax.teacher.weights import GGUFWeights

gguf_utils = pytest.importorskip("transformers.modeling_gguf_pytorch_utils")


class Stream(io.StringIO):
    def __init__(self, terminal: bool):
        super().__init__()
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


def convert_with(stream: Stream, tmp_path, monkeypatch) -> str:
    def stand_in(weights, target):
        for _ in gguf_utils.tqdm(range(40), desc="Converting and de-quantizing GGUF tensors...", mininterval=0):
            pass
        smollm.write_marker(weights, target)

    weights = GGUFWeights(path=tmp_path / "model.gguf", version="0.1.2", identity="ab" * 32)
    drawn = gguf_utils.tqdm
    monkeypatch.setenv("LABTAX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(smollm, "_convert", stand_in)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stderr", stream)
        built = smollm.ensure_cache(weights)
    assert built.built and smollm.is_complete(built.path, weights)
    assert gguf_utils.tqdm is drawn  # transformers' own bar is back after the conversion
    return stream.getvalue()


def test_in_a_log_the_conversion_is_one_line_at_the_start_and_one_at_the_end(tmp_path, monkeypatch):
    text = convert_with(Stream(terminal=False), tmp_path, monkeypatch)
    assert "\r" not in text and "de-quantizing" not in text, text
    lines = text.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("labtax: converting model.gguf into ") and lines[0].endswith("(once, about 20 s)")
    assert lines[1].startswith("labtax: converted model.gguf in ") and lines[1].endswith(" s")


def test_in_a_terminal_the_bar_stays(tmp_path, monkeypatch):
    text = convert_with(Stream(terminal=True), tmp_path, monkeypatch)
    assert "de-quantizing" in text and "\r" in text
