"""Catalog entries of publishing: Hub and object-store clients, and a JSON report read only when present."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fsspec
from kedro.io import AbstractDataset, DatasetError

from judgeforge.publishing.hub import Hub, hub_token
from judgeforge.publishing.object_store import ObjectStore


class HubClientDataset(AbstractDataset[None, Hub]):
    """Loads a `Hub` holding the token of the `hub` credentials entry or HF_TOKEN."""

    def __init__(self, credentials: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None):
        self._credentials = dict(credentials or {})
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"token": "set" if hub_token(self._credentials) else "missing"}

    def _load(self) -> Hub:
        return Hub(hub_token(self._credentials))

    def _save(self, data: None) -> None:
        raise DatasetError("a Hub client is built from credentials and cannot be saved")


class ObjectStoreDataset(AbstractDataset[None, ObjectStore]):
    """Loads an `ObjectStore` with the storage options of the `object_store` credentials entry."""

    def __init__(self, credentials: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None):
        self._credentials = dict(credentials or {})
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"credentials": "from the object_store entry" if self._credentials else "from the environment"}

    def _load(self) -> ObjectStore:
        return ObjectStore(self._credentials)

    def _save(self, data: None) -> None:
        raise DatasetError("an object-store client is built from credentials and cannot be saved")


class OptionalJSONDataset(AbstractDataset[None, dict[str, Any]]):
    """Loads a JSON report when it exists, else `{"status": "absent"}`: for reports a card shows when present."""

    def __init__(self, filepath: str, credentials: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None):
        self._filepath = filepath
        self._storage_options = dict(credentials or {})
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath}

    def _load(self) -> dict[str, Any]:
        try:
            with fsspec.open(self._filepath, "r", encoding="utf-8", **self._storage_options) as handle:
                return json.load(handle)
        except FileNotFoundError:
            return {"status": "absent"}

    def _save(self, data: None) -> None:
        raise DatasetError(f"{Path(self._filepath).name} is written by its own pipeline; this entry only reads it")
