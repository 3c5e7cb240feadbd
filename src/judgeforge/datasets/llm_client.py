"""An LLM client as a catalog entry, built from the run config's settings and credentials when a node first uses it.

Nodes such as extract_metric take the judge client but call it only when they need it (the
metric leaves something to derive); a client no node calls is never built, so a provider the
run does not use never asks for its key. Pre-flight (`judgeforge.preflight`) checks the clients
the run will call before its first node, so a missing key still fails before any paid work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kedro.io import AbstractDataset, DatasetError

# The embedded provider runs on this machine: a credentials entry (its base_url) does not apply.
LOCAL_PROVIDER = "local"


class LLMClientDataset(AbstractDataset[None, Any]):
    """Loads a `DeferredLLMClient`: the same `judgeforge.llm.LLMClient`, built on first use, for every node.

    `client` holds provider, model, embedding_model, base_url and api_version; `engine` the
    request engine's settings (concurrency, timeout, retries, pacing); both come from the run
    config, and are null when it has no data_generation section (using the client then says so).
    """

    def __init__(
        self,
        client: Mapping[str, Any] | None,
        engine: Mapping[str, Any] | None = None,
        cache_path: str | None = None,
        prices: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self._configured = client is not None
        # a client's own setting (the embedding client's batch: false) overrides the shared engine's
        self._options = {
            **(engine or {}),
            **(client or {}),
            "cache_path": cache_path,
            "prices": prices,
        }
        self._credentials = None if self._options.get("provider") == LOCAL_PROVIDER else credentials
        self._client: Any = None
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        # never the credentials
        return {
            key: self._options.get(key)
            for key in ("provider", "model", "embedding_model", "base_url")
        }

    def _load(self) -> Any:
        self._require_configured()
        return DeferredLLMClient(self.build_client, lambda: self._client)

    def build_client(self) -> Any:
        """Return the client, building it (and checking its provider, model and key) on the first call."""
        if self._client is None:
            from judgeforge.llm import build_llm_client

            self._client = build_llm_client(**self._options, credentials=self._credentials)
        return self._client

    def check(self) -> None:
        """Raise LLMConfigError when the client cannot be built (provider, model, key); sends and writes nothing."""
        from judgeforge.llm import build_llm_client

        self._require_configured()
        options = {**self._options, "cache_path": None}
        build_llm_client(
            **options, credentials=self._credentials, use_cache=False, show_progress=False
        )

    def _require_configured(self) -> None:
        if not self._configured:
            raise DatasetError(
                "the run config has no data_generation section, so it names no LLM client"
            )

    def _save(self, data: None) -> None:
        raise DatasetError("an LLM client is built from configuration and cannot be saved")


class LLMClientPoolDataset(AbstractDataset[None, dict[str, Any]]):
    """Loads {provider/model: client} for several generators, each built as an LLMClientDataset builds one.

    `clients` is a list of client settings (run globals `clients.generators`); empty or null
    gives an empty pool. Every client is built (credentials checked) when the pool loads,
    before any of them sends a request.
    """

    def __init__(
        self,
        clients: list[Mapping[str, Any]] | None,
        engine: Mapping[str, Any] | None = None,
        cache_path: str | None = None,
        prices: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self._members = {
            f"{client['provider']}/{client['model']}": LLMClientDataset(
                client, engine, cache_path, prices, credentials
            )
            for client in clients or []
        }
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"generators": list(self._members)}

    def _load(self) -> dict[str, Any]:
        # built now, not on first use: every generator's key is checked before any call
        return {name: member.build_client() for name, member in self._members.items()}

    def _save(self, data: dict[str, Any]) -> None:
        raise DatasetError("LLM clients are built from configuration and cannot be saved")


class DeferredLLMClient:
    """Stands in for an LLMClient: the first attribute a node reads builds the client."""

    def __init__(self, build: Callable[[], Any], peek: Callable[[], Any]) -> None:
        self._build = build
        self._peek = peek

    def built(self) -> Any:
        """Return the client if a node has used it, else None (without building it)."""
        return self._peek()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._build(), name)

    def __repr__(self) -> str:
        return "DeferredLLMClient()"
