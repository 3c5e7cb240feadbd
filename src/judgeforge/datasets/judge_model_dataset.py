"""A fine-tuned judge on disk: LoRA adapter, tokenizer and resolved config in one folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from judgeforge.training.judge import JUDGE_CONFIG_FILE, Judge


class JudgeModelDataset(AbstractDataset[Judge, Judge]):
    """Saves a `Judge` with `Judge.save` and loads it back with `Judge.load` (base model + adapter)."""

    def __init__(self, path: str | None, metadata: dict[str, Any] | None = None):
        # null when the run config has no training section (loading then says so)
        self._path = Path(path) if path else None
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}

    def _folder(self) -> Path:
        if self._path is None:
            raise DatasetError("the run config has no training section, so it names no judge folder")
        return self._path

    def _load(self) -> Judge:
        self._folder()
        if not self._exists():
            raise DatasetError(
                f"judge model {self._path}: not found (run the training pipeline first, or fix the path)"
            )
        return Judge.load(self._path)

    def _save(self, data: Judge) -> None:
        data.save(self._folder())

    def _exists(self) -> bool:
        return self._path is not None and (self._path / JUDGE_CONFIG_FILE).is_file()
