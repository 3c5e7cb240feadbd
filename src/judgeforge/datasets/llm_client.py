"""An LLM client as a catalog entry: `load()` builds it from the run config's settings and credentials, once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kedro.io import AbstractDataset, DatasetError

# The embedded provider runs on this machine: a credentials entry (its base_url) does not apply.
LOCAL_PROVIDER = "local"


class LLMClientDataset(AbstractDataset[None, Any]):
    """Loads a ready `judgeforge.llm.LLMClient`; the same client is returned to every node.

    `client` holds provider, model, embedding_model, base_url and api_version; `engine` the
    request engine's settings (concurrency, timeout, retries); both come from the run config,
    and are null when it has no data_generation section (loading then says so).
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
        self._options = {
            **(client or {}),
            **(engine or {}),
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
        if not self._configured:
            raise DatasetError(
                "the run config has no data_generation section, so it names no LLM client"
            )
        if self._client is None:
            from judgeforge.llm import build_llm_client

            self._client = build_llm_client(**self._options, credentials=self._credentials)
        return self._client

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
        return {name: member.load() for name, member in self._members.items()}

    def _save(self, data: dict[str, Any]) -> None:
        raise DatasetError("LLM clients are built from configuration and cannot be saved")
