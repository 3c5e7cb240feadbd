"""An LLM client as a catalog entry, built from params and credentials when a node first uses it.

Nodes such as extract_metric take the judge client but call it only when they need it (the
metric leaves something to derive); a client no node calls is never built, so a provider the
run does not use never asks for its key. Pre-flight (`judgeforge.preflight`) builds the clients
the run will call before its first node, so a missing key still fails before any paid work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kedro.io import AbstractDataset, DatasetError


class LLMClientDataset(AbstractDataset[None, Any]):
    """Loads a `DeferredLLMClient`: the same `judgeforge.llm.LLMClient`, built on first use, for every node."""

    def __init__(
        self,
        provider: str = "local",
        model: str | None = None,
        embedding_model: str | None = None,
        base_url: str | None = None,
        api_version: str | None = None,
        max_concurrent_requests: int = 5,
        request_timeout_seconds: float = 120.0,
        max_retries: int = 6,
        adaptive_concurrency: bool = True,
        cache_path: str | None = None,
        prices: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self._options = {
            "provider": provider,
            "model": model,
            "embedding_model": embedding_model,
            "base_url": base_url,
            "api_version": api_version,
            "max_concurrent_requests": max_concurrent_requests,
            "request_timeout_seconds": request_timeout_seconds,
            "max_retries": max_retries,
            "adaptive_concurrency": adaptive_concurrency,
            "cache_path": cache_path,
            "prices": prices,
        }
        self._credentials = credentials
        self._client: Any = None
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        # never the credentials
        return {
            key: self._options[key] for key in ("provider", "model", "embedding_model", "base_url")
        }

    def _load(self) -> Any:
        return DeferredLLMClient(self.build_client)

    def build_client(self) -> Any:
        """Return the client, building it (and checking its provider, model and key) on the first call."""
        if self._client is None:
            from judgeforge.llm import build_llm_client

            self._client = build_llm_client(**self._options, credentials=self._credentials)
        return self._client

    def check(self) -> None:
        """Raise LLMConfigError when the client cannot be built (provider, model, key); sends and writes nothing."""
        from judgeforge.llm import build_llm_client

        options = {**self._options, "cache_path": None}
        build_llm_client(
            **options, credentials=self._credentials, use_cache=False, show_progress=False
        )

    def _save(self, data: None) -> None:
        raise DatasetError("an LLM client is built from configuration and cannot be saved")


class DeferredLLMClient:
    """Stands in for an LLMClient: the first attribute a node reads builds the client."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build

    def __getattr__(self, name: str) -> Any:
        return getattr(self._build(), name)

    def __repr__(self) -> str:
        return "DeferredLLMClient()"
