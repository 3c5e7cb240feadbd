"""Kedro test helpers that stand in for file datasets."""

from __future__ import annotations

from kedro.io import MemoryDataset


class KeptMemoryDataset(MemoryDataset):
    """An in-memory report the runner keeps after its consumers ran (as a file dataset would be)."""

    def _release(self) -> None:
        pass
