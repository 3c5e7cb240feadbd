"""judgeforge: synthetic data, drift diagnostics and a small fine-tuned judge for a custom metric."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from judgeforge.preview import preview_generation
    from judgeforge.sdk import run_data_generation, run_training

__version__ = "0.1.0"

__all__ = ["__version__", "preview_generation", "run_data_generation", "run_training"]

# Imported on first use: the SDK pulls in Kedro and every pipeline (~9 s), and a process that
# needs one submodule (a local generation worker, judgeforge.llm) should not pay for them.
_PUBLIC = {
    "preview_generation": "judgeforge.preview",
    "run_data_generation": "judgeforge.sdk",
    "run_training": "judgeforge.sdk",
}


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'judgeforge' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
