"""Kedro parameters for tests: data generation served by the loopback server, written into a project."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def loopback_llm(base_url: str) -> dict[str, str]:
    """Return the `llm` section of data generation on the loopback OpenAI-compatible server at `base_url`."""
    return {
        "provider": "openai",
        "model": "test-model",
        "embedding_model": "text-embedding-3-small",
        "base_url": base_url,
    }


def write_loopback_parameters(
    project: Path,
    base_url: str,
    file: str = "conf/local/parameters.yml",
    **data_generation: Any,
) -> Path:
    """Write `data_generation` (its llm the loopback server) as the Kedro parameters `file` of `project`; return it."""
    path = project / file
    sections = {"llm": loopback_llm(base_url), **data_generation}
    path.write_text(yaml.safe_dump({"data_generation": sections}))
    return path
