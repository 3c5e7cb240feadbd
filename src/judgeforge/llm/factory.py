"""`build_llm_client`: one call from params + credentials to a ready client, failing early on bad config."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judgeforge.llm.backends import ChatBackend, EmbeddingBackend
from judgeforge.llm.batch import BatchChat
from judgeforge.llm.cache import ResponseCache
from judgeforge.llm.client import LLMClient
from judgeforge.llm.engine import EngineSettings, RequestEngine
from judgeforge.llm.local import LOCAL_BATCH_SIZE, LocalChat, LocalEmbeddings
from judgeforge.llm.openai_compatible import (
    Endpoint,
    OpenAICompatibleChat,
    OpenAICompatibleEmbeddings,
    azure_endpoint,
    openai_endpoint,
)
from judgeforge.llm.providers import (
    BATCH_PROVIDERS,
    LOCAL_EMBEDDING_MODEL,
    LOCAL_EMBEDDING_MODELS,
    PROVIDER_NAMES,
    PROVIDERS,
)
from judgeforge.llm.secrets import Redactor
from judgeforge.llm.types import LLMConfigError, Usage, price_table
from judgeforge.models.embedded import judgeforge_cache_dir

AZURE_ENDPOINT_ENV_VAR = "AZURE_OPENAI_ENDPOINT"
AZURE_API_VERSION_ENV_VAR = "OPENAI_API_VERSION"
DEFAULT_AZURE_API_VERSION = "2024-10-21"
RESPONSE_CACHE_FILENAME = "llm-responses.sqlite"


@dataclass(frozen=True, slots=True)
class Connection:
    """Everything needed to reach a remote provider, secrets included (never printed)."""

    provider: str
    base_url: str | None
    api_key: str | None
    api_version: str | None


def default_cache_path() -> Path:
    """Where responses are cached unless told otherwise."""
    return judgeforge_cache_dir() / RESPONSE_CACHE_FILENAME


def build_llm_client(
    provider: str = "local",
    model: str | None = None,
    *,
    embedding_model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    api_version: str | None = None,
    deployment: str | None = None,
    credentials: Mapping[str, Any] | None = None,
    max_concurrent_requests: int = 16,
    request_timeout_seconds: float = 120.0,
    max_retries: int = 6,
    retry_budget_seconds: float = 300.0,
    max_connection_failures: int = 10,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    backoff_base_seconds: float = 0.5,
    cache_path: str | Path | None = None,
    use_cache: bool = True,
    prices: Mapping[str, Any] | None = None,
    local_batch_size: int = LOCAL_BATCH_SIZE,
    local_workers: int | None = None,
    adaptive_concurrency: bool = True,
    show_progress: bool = True,
    batch: bool = False,
) -> LLMClient:
    """A client for `provider`/`model`, validated before any request is made.

    `credentials` is a Kedro credentials entry: `{api_key, base_url, api_version}`, or such a
    dict under the provider's name. Keys may also come from the environment (`Provider.key_env_vars`).
    `prices` maps a model to `{input, output}` USD per million tokens, over DEFAULT_PRICES.
    `batch` sends chat requests through the provider's batch API (llm/batch.py), billed at its
    batch price; the batch ledger lives in the response cache, so without it nothing resumes.
    """
    settings = _engine_settings(
        provider,
        EngineSettings(
            max_concurrent_requests=max_concurrent_requests,
            request_timeout_seconds=request_timeout_seconds,
            max_retries=max_retries,
            retry_budget_seconds=retry_budget_seconds,
            max_connection_failures=max_connection_failures,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            backoff_base_seconds=backoff_base_seconds,
            adaptive_concurrency=adaptive_concurrency,
            show_progress=show_progress,
            progress_label=provider,
        ),
    )
    connection = _connection(provider, base_url, api_key, api_version, credentials)
    chat_model = _chat_model(provider, model, deployment)
    usage = Usage()
    redact = Redactor([connection.api_key])
    engine = RequestEngine(settings, usage, redact)
    price_factor = _batch_price_factor(provider) if batch else 1.0
    embedding_name = embedding_model or PROVIDERS[provider].embedding_model
    embeddings = _embedding_backend(connection, embedding_name, engine)
    cache = (
        ResponseCache(Path(cache_path) if cache_path else default_cache_path())
        if use_cache
        else None
    )
    chat = (
        _batch_backend(connection, chat_model, engine, redact, cache)
        if batch
        else _chat_backend(
            connection, chat_model, engine, local_batch_size, local_workers, show_progress
        )
    )
    return LLMClient(
        chat,
        embeddings,
        cache=cache,
        prices=price_table(prices),
        usage=usage,
        redact=redact,
        chat_price_factor=price_factor,
    )


def _batch_price_factor(provider: str) -> float:
    """The share of the list price a provider's batch API charges; refuses providers without one."""
    factor = PROVIDERS[provider].batch_price_factor
    if factor is None:
        raise LLMConfigError(
            f"async_config.batch: provider {provider!r} has no batch API judgeforge submits to; "
            f"batch works with {', '.join(BATCH_PROVIDERS)} (set batch: false for {provider})"
        )
    return factor


def _engine_settings(provider: str, settings: EngineSettings) -> EngineSettings:
    """The engine settings, once checked."""
    if provider not in PROVIDERS:
        raise LLMConfigError(
            f"unknown LLM provider {provider!r}: use one of {', '.join(PROVIDER_NAMES)}"
        )
    at_least = {
        "max_concurrent_requests": 1,
        "max_retries": 0,
        "backoff_base_seconds": 0,
        "max_connection_failures": 1,
    }
    for name, floor in at_least.items():
        if getattr(settings, name) < floor:
            raise LLMConfigError(f"{name} must be >= {floor}, got {getattr(settings, name)}")
    positive = [
        "request_timeout_seconds",
        "retry_budget_seconds",
        "requests_per_minute",
        "tokens_per_minute",
    ]
    for name in positive:
        value = getattr(settings, name)
        if value is not None and value <= 0:
            raise LLMConfigError(f"{name} must be > 0, got {value}")
    return settings


def _connection(
    provider: str,
    base_url: str | None,
    api_key: str | None,
    api_version: str | None,
    credentials: Mapping[str, Any] | None,
) -> Connection:
    """Address, key and API version of the provider, from arguments, credentials, then environment."""
    entry = _credentials_entry(provider, credentials)
    base_url = base_url or entry.get("base_url")
    if provider == "local":
        if base_url:
            raise LLMConfigError("provider 'local' runs on this machine and takes no base_url")
        return Connection(provider, None, None, None)
    if PROVIDERS[provider].needs_base_url and not base_url:
        raise LLMConfigError(
            f"provider {provider!r} is an OpenAI-compatible gateway with no public default address: "
            "set base_url to its URL (e.g. https://vegas.example.com/v1)"
        )
    if provider == "azure":
        base_url = base_url or os.environ.get(AZURE_ENDPOINT_ENV_VAR)
        if not base_url:
            raise LLMConfigError(
                f"provider 'azure' needs the resource URL: set base_url or {AZURE_ENDPOINT_ENV_VAR} "
                "(e.g. https://my-resource.openai.azure.com)"
            )
        api_version = (
            api_version
            or entry.get("api_version")
            or os.environ.get(AZURE_API_VERSION_ENV_VAR)
            or DEFAULT_AZURE_API_VERSION
        )
    key = api_key or entry.get("api_key") or _key_from_environment(provider)
    # A self-hosted OpenAI-compatible server (vLLM, Ollama, llama.cpp) usually needs no key.
    key_optional = provider == "openai" and base_url is not None
    if not key and not key_optional:
        names = " or ".join(PROVIDERS[provider].key_env_vars)
        raise LLMConfigError(
            f"no API key for provider {provider!r}: set {names}, or api_key in its credentials "
            "entry (conf/local/credentials.yml)"
        )
    return Connection(provider, base_url, str(key) if key else None, api_version)


def _credentials_entry(provider: str, credentials: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The flat credentials dict for a provider (a Kedro entry may nest it under the provider name)."""
    if not credentials:
        return {}
    nested = credentials.get(provider)
    return nested if isinstance(nested, Mapping) else credentials


def _key_from_environment(provider: str) -> str | None:
    """The first non-empty API key environment variable of a provider."""
    for name in PROVIDERS[provider].key_env_vars:
        if os.environ.get(name):
            return os.environ[name]
    return None


def _chat_model(provider: str, model: str | None, deployment: str | None) -> str:
    """The chat model name (the deployment name on Azure)."""
    if deployment and provider != "azure":
        raise LLMConfigError(
            f"deployment is an Azure setting; provider {provider!r} takes model instead"
        )
    chosen = (deployment or model) or PROVIDERS[provider].chat_model
    if not chosen:
        what = "deployment (or model)" if provider == "azure" else "model"
        raise LLMConfigError(f"provider {provider!r} has no default model: set {what}")
    return chosen


def _openai_style_endpoint(
    connection: Connection, chat_model: str, embedding_model: str
) -> Endpoint:
    """The wire endpoint of an OpenAI-protocol provider."""
    if connection.provider == "azure":
        return azure_endpoint(
            str(connection.base_url),
            chat_model,
            embedding_model,
            str(connection.api_version),
            str(connection.api_key),
        )
    return openai_endpoint(connection.base_url, connection.api_key)


def _chat_backend(
    connection: Connection,
    model: str,
    engine: RequestEngine,
    local_batch_size: int,
    local_workers: int | None,
    show_progress: bool,
) -> ChatBackend:
    """The chat backend of a provider."""
    if connection.provider == "local":
        return LocalChat(
            model=model,
            batch_size=local_batch_size,
            show_progress=show_progress,
            workers=local_workers,
        )
    if connection.provider == "gemini":
        from judgeforge.llm.gemini import GeminiChat

        return GeminiChat(model, str(connection.api_key), engine, connection.base_url)
    endpoint = _openai_style_endpoint(
        connection, model, PROVIDERS[connection.provider].embedding_model
    )
    return OpenAICompatibleChat(connection.provider, model, endpoint, engine)


def _batch_backend(
    connection: Connection,
    model: str,
    engine: RequestEngine,
    redact: Redactor,
    ledger: ResponseCache | None,
) -> ChatBackend:
    """The chat backend sending requests as the provider's batches."""
    if connection.provider == "gemini":
        from judgeforge.llm.gemini import GeminiBatchChat

        return GeminiBatchChat(
            model, str(connection.api_key), engine.settings, redact, ledger, connection.base_url
        )
    endpoint = _openai_style_endpoint(
        connection, model, PROVIDERS[connection.provider].embedding_model
    )
    return BatchChat(
        connection.provider,
        model,
        endpoint,
        connection.base_url,
        connection.api_key,
        engine.settings,
        redact,
        ledger,
    )


def _embedding_backend(
    connection: Connection, model: str, engine: RequestEngine
) -> EmbeddingBackend:
    """The embedding backend: the embedded MiniLM when asked for, else the provider's own."""
    if connection.provider == "local" or model in LOCAL_EMBEDDING_MODELS:
        if model not in LOCAL_EMBEDDING_MODELS:
            raise LLMConfigError(
                f"provider 'local' embeds with {LOCAL_EMBEDDING_MODEL} only; got embedding_model {model!r}"
            )
        return LocalEmbeddings()
    if connection.provider == "gemini":
        from judgeforge.llm.gemini import GeminiEmbeddings

        return GeminiEmbeddings(model, str(connection.api_key), engine, connection.base_url)
    endpoint = _openai_style_endpoint(connection, model, model)
    return OpenAICompatibleEmbeddings(connection.provider, model, endpoint, engine)
