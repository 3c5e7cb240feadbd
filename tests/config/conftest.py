"""Shared fixtures for the config tests: a minimal valid run config and helpers to break it."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from judgeforge.config import ConfigError, validate_run_config

# The smallest run config that validates: a binary / single-feature metric from a CSV seed
# file, and a boolean training section whose prompt names the one feature column.
_MINIMAL_RUN_CONFIG: dict[str, Any] = {
    "run_steps": ["data_generation", "training"],
    "pipeline_provider": "local",
    "metric_name": "toxicity",
    "data_generation": {
        "metric": {
            "name": "toxicity",
            "description": "Is the message toxic?",
            "type": "binary",
            "input_format": "single",
            "class_labels": [
                {"name": "toxic", "label": 1, "rubric": "Insults, threats or slurs."},
                {"name": "clean", "label": 0, "rubric": "Polite or neutral text."},
            ],
        },
        "source_data": {
            "dataset": {
                "source_type": "csv",
                "columns": {"features": ["text"], "label": "label"},
                "csv": {"file_path": "data/01_raw/seed.csv"},
            }
        },
        "output": {"dataset": {"repo_name": "toxicity-data"}},
    },
    "training": {
        "metric": {"type": "boolean"},
        "prompt_template": "Message: {text}\nIs it toxic?",
    },
}

DELETE = object()
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _steps(path: str) -> list[str | int]:
    return [name if name else int(index) for name, index in _STEP.findall(path)]


def set_path(raw: dict, path: str, value: Any) -> dict:
    """Set (or, with DELETE, remove) the value at a dotted path like `a.b[0].c`; return raw."""
    steps = _steps(path)
    node: Any = raw
    for step in steps[:-1]:
        if isinstance(step, str) and step not in node:
            node[step] = {}
        node = node[step]
    if value is DELETE:
        del node[steps[-1]]
    else:
        node[steps[-1]] = value
    return raw


def mutated(base: dict, changes: dict[str, Any]) -> dict:
    """Return a deep copy of `base` with every `path: value` change applied, in order."""
    raw = copy.deepcopy(base)
    for path, value in changes.items():
        set_path(raw, path, value)
    return raw


def config_error(raw: Any) -> ConfigError:
    """Return the ConfigError that validating `raw` raises (fail the test when it validates)."""
    with pytest.raises(ConfigError) as caught:
        validate_run_config(raw)
    return caught.value


def problem_lines(error: ConfigError) -> list[str]:
    """Return the problem lines of the error message (without the heading and indentation)."""
    heading, *lines = str(error).splitlines()
    assert heading.startswith("invalid "), heading
    return [line.strip() for line in lines]


def assert_problem(error: ConfigError, path: str, rule_fragment: str) -> str:
    """Assert one message line is `path: value — rule` with the rule fragment; return it."""
    lines = problem_lines(error)
    matching = [
        line
        for line in lines
        if line.startswith(f"{path}: ")
        and " — " in line
        and rule_fragment in line.split(" — ", 1)[1]
    ]
    assert matching, f"no line for {path!r} with rule {rule_fragment!r}; lines were:\n" + "\n".join(
        lines
    )
    return matching[0]


@pytest.fixture
def raw_config() -> dict[str, Any]:
    """Return a fresh deep copy of the minimal valid raw run config (safe to mutate)."""
    return copy.deepcopy(_MINIMAL_RUN_CONFIG)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Unset the environment variables the config defaults read, so results do not depend on the shell."""
    monkeypatch.delenv("LUNA_OBJECT_STORE_BUCKET", raising=False)
    return monkeypatch
