"""Fixtures for the LLM layer tests: a loopback OpenAI server, an isolated cache, clean env."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from judgeforge.llm import LLMClient, build_llm_client
from judgeforge.llm.factory import AZURE_ENDPOINT_ENV_VAR
from judgeforge.llm.providers import PROVIDERS
from tests.support.openai_server import OpenAIServer
from tests.support.tiny_judge import WORDS, embedded_tokenizer, save_model_cache, scoring_llama

TEST_KEY = "sk-test-0123456789abcdef"


@pytest.fixture(autouse=True)
def no_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see no API keys but the ones they set."""
    for provider in PROVIDERS.values():
        for name in provider.key_env_vars:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(AZURE_ENDPOINT_ENV_VAR, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    """A fresh scriptable OpenAI-compatible server on a free loopback port."""
    with OpenAIServer(latency=0.0) as running:
        yield running


@pytest.fixture
def cache_path(tmp_path: Path) -> Path:
    """A response cache private to the test."""
    return tmp_path / "responses.sqlite"


@pytest.fixture
def make_client(server: OpenAIServer, cache_path: Path) -> Iterator[Callable[..., LLMClient]]:
    """Build openai-provider clients against the loopback server (closed after the test)."""
    built: list[LLMClient] = []

    def make(**overrides: Any) -> LLMClient:
        settings: dict[str, Any] = {
            "provider": "openai",
            "model": "test-model",
            "base_url": server.base_url,
            "api_key": TEST_KEY,
            "cache_path": cache_path,
            "max_concurrent_requests": 4,
            "request_timeout_seconds": 5.0,
            "max_retries": 3,
            "backoff_base_seconds": 0.01,
            "show_progress": False,
        }
        settings.update(overrides)
        client = build_llm_client(**settings)
        built.append(client)
        return client

    yield make
    for client in built:
        client.close()


@pytest.fixture(scope="module")
def rambling_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A judgeforge cache whose embedded model samples only WORDS, never its end of turn (their
    scores exact in bfloat16 too)."""
    tokenizer = embedded_tokenizer()
    words = tokenizer.convert_tokens_to_ids(list(WORDS))
    model = scoring_llama(dict.fromkeys(words, 4.0), max_position_embeddings=2048)
    return save_model_cache(model, tmp_path_factory.mktemp("judgeforge-cache"), tokenizer)
