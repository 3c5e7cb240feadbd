"""Fixtures for synthesis tests: a small binary metric, seed tables, and a loopback LLM client."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from judgeforge.config.data_generation import (
    DatasetColumns,
    GenerationConfig,
    LLMConfig,
    OutputConfig,
    SamplingConfig,
)
from judgeforge.llm import build_llm_client
from tests.support.openai_server import OpenAIServer, Reply

CLASS_IN_PROMPT = re.compile(r"new, different examples? of class (\w+):")


@pytest.fixture
def columns() -> DatasetColumns:
    return DatasetColumns(features=["text"], label="label")


@pytest.fixture
def sampling() -> SamplingConfig:
    return SamplingConfig(seed=7)


@pytest.fixture
def llm() -> LLMConfig:
    return LLMConfig(provider="openai", model="test-model", embedding_model="text-embedding-3-small")


@pytest.fixture
def output() -> OutputConfig:
    return OutputConfig(push_to_hub=False, dataset={"repo_name": "complaints", "splits": {"train": "train", "test": "test"}})


def generation_config(**overrides) -> GenerationConfig:
    """Return generation settings for tests, small and fast."""
    values = {"total_examples": 6, "examples_per_call": 1, "context_examples": 2, "async_config": {"max_concurrent_requests": 4, "max_retries": 2}}
    return GenerationConfig(**{**values, **overrides})


@pytest.fixture
def enhancement() -> pd.DataFrame:
    return pd.DataFrame(
        {"row_id": ["0", "1", "2", "3"], "text": ["My parcel never came", "Love the shop", "Refund is late again", "Do you ship to Peru?"], "label": ["1", "0", "1", "0"]}
    )


@pytest.fixture
def holdout() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row_id": ["4", "5", "6", "7", "8", "9"],
            "text": ["The box was crushed", "Thanks for the help", "Charged twice for one order", "What sizes do you have?", "Still no reply from support", "Great prices"],
            "label": ["1", "0", "1", "0", "1", "0"],
        }
    )


def requested_class(request) -> str:
    """Return the class name a generation prompt asks for."""
    match = CLASS_IN_PROMPT.search(request.last_user_message)
    assert match, request.last_user_message
    return match.group(1)


def unique_examples_responder():
    """Return a responder answering every call with one new example of the asked class."""
    counter = itertools.count()

    def respond(request) -> Reply:
        return Reply.json({"examples": [{"text": f"A {requested_class(request)} message number {next(counter)}"}]})

    return respond


@pytest.fixture
def client_factory(tmp_path: Path):
    """Return a function building an OpenAI-compatible client for a server, with a cache in tmp_path."""
    clients = []

    def build(server: OpenAIServer, cache_name: str = "cache.sqlite"):
        client = build_llm_client(
            "openai", "test-model", base_url=server.base_url, max_concurrent_requests=4, max_retries=2,
            cache_path=tmp_path / cache_name, show_progress=False,
        )
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


def answer_json(text: str) -> str:
    """Return a chat answer holding one example."""
    return json.dumps({"examples": [{"text": text}]})
