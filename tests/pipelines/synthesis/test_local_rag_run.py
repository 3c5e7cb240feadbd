"""The user's case through the front door: a rag example on the embedded model finishes and delivers;
on a model that would end every field at once, each field is held open to a third of a real length."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from judgeforge.llm.local import FIELD_SHORTEST_SHARE
from judgeforge.models.embedded import COMPLETE_MARKER, EMBEDDED_MODEL_NAME
from tests.support.commands import judgeforge
from tests.support.tiny_judge import embedded_tokenizer, save_checkpoint, scoring_llama


def test_rag_example_on_the_embedded_model_delivers(project_copy: Path) -> None:
    raw = yaml.safe_load((project_copy / "examples/binary_rag_faithfulness.yaml").read_text())
    raw["run_steps"] = ["data_generation"]
    raw["data_generation"]["generation"]["total_examples"] = 2
    # the 135M model keeps about one rag call in three: this test asks that the run finishes and
    # delivers, so it may fall short by one example (the shortfall rule is tested elsewhere)
    raw["data_generation"]["generation"]["max_shortfall_fraction"] = 0.5
    raw["data_generation"].setdefault("data_quality_metrics", {})["enabled"] = False
    run_yaml = project_copy / "examples" / "run.yaml"  # its seed path is relative to examples/
    run_yaml.write_text(yaml.safe_dump(raw))
    result = subprocess.run(
        [sys.executable, "-m", "judgeforge", "run", "-c", str(run_yaml)],
        cwd=project_copy,
        capture_output=True,
        text=True,
        timeout=2400,
        check=False,
        env={
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "KEDRO_DISABLE_TELEMETRY": "1",
            "OMP_NUM_THREADS": "1",
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((project_copy / "data/08_reporting/generation_report.json").read_text())
    assert report["delivered_total"] >= 1
    assert report["provider"] == "local"


WORDS = ("Ġparcel", "Ġblue", "Ġseven", "Ġquiet", "Ġriver", "Ġlamp")
FIELDS = ("query", "context", "response")


@pytest.fixture(scope="module")
def hasty_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A judgeforge cache whose embedded model ends its turn at once (p ≈ 0.9), else writes one of WORDS."""
    tokenizer = embedded_tokenizer()
    scores = {tokenizer.eos_token_id: 16.0} | dict.fromkeys(
        tokenizer.convert_tokens_to_ids(list(WORDS)), 12.0
    )
    cache = tmp_path_factory.mktemp("judgeforge-cache")
    target = save_checkpoint(scoring_llama(scores), cache / EMBEDDED_MODEL_NAME, tokenizer)
    (target / COMPLETE_MARKER).write_text("a test model\n")
    return cache


def test_a_rag_run_holds_each_field_open_until_a_third_of_a_real_length(
    project_copy: Path, hasty_model_cache: Path
) -> None:
    # left alone, this model would end every field at its first token (empty fields, nothing
    # delivered); the local provider holds a field open until it has a third of the length
    # drawn for it from a real row of its class, and the field ends soon after
    raw = yaml.safe_load((project_copy / "examples/binary_rag_faithfulness.yaml").read_text())
    raw["run_steps"] = ["data_generation"]
    raw["data_generation"]["generation"]["total_examples"] = 6
    raw["data_generation"].setdefault("data_quality_metrics", {})["enabled"] = False
    run_yaml = project_copy / "examples" / "run.yaml"  # its seed path is relative to examples/
    run_yaml.write_text(yaml.safe_dump(raw))
    env = {"JUDGEFORGE_CACHE_DIR": str(hasty_model_cache)}
    result = judgeforge(project_copy, "run", "-c", str(run_yaml), env=env)
    assert result.returncode == 0, result.stderr[-3000:]

    real = pd.read_json(project_copy / "examples/data/rag_faithfulness.jsonl", lines=True)
    lengths = real[list(FIELDS)].apply(lambda column: column.str.len()).groupby(real["label"])
    shortest_real, longest_real = lengths.min(), lengths.max()
    rows = pd.read_parquet(project_copy / "data/03_primary/synthetic_examples.parquet")
    assert len(rows) == 6
    words = {word.lstrip("Ġ") for word in WORDS}
    for _, row in rows.iterrows():
        label = int(row["label"])
        for field in FIELDS:
            value = row[field]
            assert set(value.split()) <= words, (field, value)
            shortest = shortest_real.loc[label, field] * FIELD_SHORTEST_SHARE
            longest = longest_real.loc[label, field] * FIELD_SHORTEST_SHARE
            # at least a third of the drawn real length, then a few more words at most
            assert shortest <= len(value) <= longest + 4 * len(" parcel"), (field, value)
