"""Shared test set-up: offline, no telemetry, and a disposable copy of the Kedro project."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# What a fresh clone holds: sources, conf, examples and the raw demo data; never outputs.
_NOT_COPIED = shutil.ignore_patterns(
    ".venv",
    ".git",
    "build",
    "__pycache__",
    "*.egg-info",
    ".pytest_cache",
    ".ruff_cache",
    "credentials.yml",
)


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """Return a fresh copy of the project (no generated data) in a temporary folder."""
    return copy_project(tmp_path / "project")


def copy_project(target: Path) -> Path:
    """Copy what a fresh clone holds into `target` (created) and return it."""
    target.mkdir()
    for name in ("pyproject.toml", ".telemetry", "README.md"):
        shutil.copy2(PROJECT_ROOT / name, target / name)
    for folder in ("src", "conf", "examples"):
        shutil.copytree(PROJECT_ROOT / folder, target / folder, ignore=_NOT_COPIED)
    shutil.copytree(PROJECT_ROOT / "data" / "01_raw", target / "data" / "01_raw")
    return target


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama with the SmolLM2 tokenizer (and its chat template)."""
    from tests.support.tiny_judge import save_tiny_llama  # imported here: it imports torch

    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random BERT with the embedded MiniLM's tokenizer, the encoder head's stand-in."""
    from tests.support.tiny_judge import save_tiny_bert  # imported here: it imports torch

    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


from tests.config.conftest import raw_config  # noqa: F401 -- the minimal valid run config, for any test
from tests.support.openai_server import openai_server  # noqa: F401 -- a fixture for every test module
from tests.support.recording_hub import recording_api  # noqa: F401 -- a fixture for every test module
