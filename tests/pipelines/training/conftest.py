"""Fixtures for the judge training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.tiny_judge import save_tiny_bert, save_tiny_llama


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama with the SmolLM2 tokenizer (and its chat template)."""
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random BERT with the embedded MiniLM's tokenizer, the encoder head's stand-in."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


from tests.support.s3_server import s3_server  # noqa: F401 -- fixture
