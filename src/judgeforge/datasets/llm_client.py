"""An LLM client as a catalog entry: `load()` builds it from params and credentials, once."""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset, DatasetError


class LLMClientDataset(AbstractDataset[None, Any]):
    """Loads a ready `judgeforge.llm.LLMClient`; the same client is returned to every node."""

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
        retry_budget_seconds: float = 300.0,
        max_connection_failures: int = 10,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
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
            "retry_budget_seconds": retry_budget_seconds,
            "max_connection_failures": max_connection_failures,
            "requests_per_minute": requests_per_minute,
            "tokens_per_minute": tokens_per_minute,
            "cache_path": cache_path,
            "prices": prices,
        }
        self._credentials = credentials
        self._client: Any = None
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        # never the credentials
        return {key: self._options[key] for key in ("provider", "model", "embedding_model", "base_url")}

    def _load(self) -> Any:
        if self._client is None:
            from judgeforge.llm import build_llm_client

            self._client = build_llm_client(**self._options, credentials=self._credentials)
        return self._client

    def _save(self, data: None) -> None:
        raise DatasetError("an LLM client is built from configuration and cannot be saved")
