"""Example run YAMLs rewritten for tests: generation served by the loopback server, sized small."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import PROJECT_ROOT
from tests.support.loopback_parameters import loopback_llm

EXAMPLES = sorted((PROJECT_ROOT / "examples").glob("*.yaml"))


def loopback_run_yaml(example: Path, base_url: str, target: Path, **sections: Any) -> Path:
    """Write a copy of an example run YAML that generates a few rows through `base_url`.

    Its seed files keep pointing at the example's (relative paths start at a run YAML's folder);
    its outputs are relative to `target`'s folder.
    """
    config = yaml.safe_load(example.read_text(encoding="utf-8"))
    generation = config["data_generation"]
    csv = generation["source_data"]["dataset"]["csv"]
    for key in ("file_path", "train_file_path"):
        if csv.get(key) and not Path(csv[key]).is_absolute():
            csv[key] = str((example.parent / csv[key]).resolve())
    generation["llm"] = loopback_llm(base_url)
    generation["generation"].update(
        {
            "total_examples": 4,
            "examples_per_call": 1,
            "async_config": {"max_concurrent_requests": 4, "max_retries": 1},
        }
    )
    generation["data_quality_metrics"]["enabled"] = False
    for dotted, value in sections.items():
        _set(config, dotted.split("__"), value)
    target.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return target


def _set(tree: dict, keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        tree = tree[key]
    tree[keys[-1]] = copy.deepcopy(value)
