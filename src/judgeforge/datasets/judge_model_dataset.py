"""A fine-tuned judge on disk: LoRA adapter, tokenizer and resolved config in one folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from judgeforge.training.judge import JUDGE_CONFIG_FILE, Judge


class JudgeModelDataset(AbstractDataset[Judge, Judge]):
    """Saves a `Judge` with `Judge.save` and loads it back with `Judge.load` (base model + adapter)."""

    def __init__(self, path: str, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}

    def _load(self) -> Judge:
        if not self._exists():
            raise DatasetError(
                f"judge model {self._path}: not found (run the training pipeline first, or fix the path)"
            )
        return Judge.load(self._path)

    def _save(self, data: Judge) -> None:
        data.save(self._path)

    def _exists(self) -> bool:
        return (self._path / JUDGE_CONFIG_FILE).is_file()
