"""A Hugging Face DatasetDict saved with `save_to_disk`, on a local path or an fsspec URL."""

from __future__ import annotations

from typing import Any

import datasets
from kedro.io import AbstractDataset, DatasetError


class DatasetDictDataset(AbstractDataset[datasets.DatasetDict, datasets.DatasetDict]):
    """Saves and loads a DatasetDict folder (one sub-folder per split)."""

    def __init__(self, path: str, credentials: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None):
        self._path = path
        self._storage_options = dict(credentials or {})
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path}

    def _load(self) -> datasets.DatasetDict:
        try:
            loaded = datasets.load_from_disk(self._path, storage_options=self._storage_options)
        except FileNotFoundError:
            raise DatasetError(f"dataset {self._path}: not found (run the synthesis pipeline first, or fix the path)") from None
        if not isinstance(loaded, datasets.DatasetDict):
            raise DatasetError(f"dataset {self._path}: holds a single split, expected a DatasetDict with train and test splits")
        return loaded

    def _save(self, data: datasets.DatasetDict) -> None:
        data.save_to_disk(self._path, storage_options=self._storage_options)

    def _exists(self) -> bool:
        try:
            datasets.load_from_disk(self._path, storage_options=self._storage_options)
        except FileNotFoundError:
            return False
        return True
