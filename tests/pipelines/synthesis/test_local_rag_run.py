"""The user's case through the front door: a rag example on the embedded model finishes and delivers;
on a model that would end every field at once, each field is held open to a third of a real length;
on one that never ends a sentence, a field ends at a line break, or at twice a real length."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
import yaml

from judgeforge.llm.local import FIELD_LONGEST_SHARE, FIELD_SHORTEST_SHARE
from tests.support.commands import judgeforge
from tests.support.tiny_judge import embedded_tokenizer, save_model_cache, scoring_llama, tiny_llama

WORDS = ("Ġparcel", "Ġblue", "Ġseven", "Ġquiet", "Ġriver", "Ġlamp")
FIELDS = ("query", "context", "response")


def rag_rows_written_by(model_cache: Path, project_copy: Path, total_examples: int) -> pd.DataFrame:
    """Run `judgeforge run` on the rag example with the embedded model of `model_cache`; return
    the synthetic rows (the run asserted to succeed)."""
    raw = yaml.safe_load((project_copy / "examples/binary_rag_faithfulness.yaml").read_text())
    raw["run_steps"] = ["data_generation"]
    raw["data_generation"]["generation"]["total_examples"] = total_examples
    raw["data_generation"].setdefault("data_quality_metrics", {})["enabled"] = False
    run_yaml = project_copy / "examples" / "run.yaml"  # its seed path is relative to examples/
    run_yaml.write_text(yaml.safe_dump(raw))
    env = {"JUDGEFORGE_CACHE_DIR": str(model_cache)}
    result = judgeforge(project_copy, "run", "-c", str(run_yaml), env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return pd.read_parquet(project_copy / "data/03_primary/synthetic_examples.parquet")


def real_field_lengths(project_copy: Path) -> Any:
    """The rag example's real field lengths in characters, grouped by label."""
    real = pd.read_json(project_copy / "examples/data/rag_faithfulness.jsonl", lines=True)
    return real[list(FIELDS)].apply(lambda column: column.str.len()).groupby(real["label"])


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


@pytest.fixture(scope="module")
def hasty_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A judgeforge cache whose embedded model ends its turn at once (p ≈ 0.9), else writes one of WORDS."""
    tokenizer = embedded_tokenizer()
    scores = {tokenizer.eos_token_id: 16.0} | dict.fromkeys(
        tokenizer.convert_tokens_to_ids(list(WORDS)), 12.0
    )
    return save_model_cache(
        scoring_llama(scores), tmp_path_factory.mktemp("judgeforge-cache"), tokenizer
    )


def test_a_rag_run_holds_each_field_open_until_a_third_of_a_real_length(
    project_copy: Path, hasty_model_cache: Path
) -> None:
    # left alone, this model would end every field at its first token (empty fields, nothing
    # delivered); the local provider holds a field open until it has a third of the length
    # drawn for it from a real row of its class, and the field ends soon after
    rows = rag_rows_written_by(hasty_model_cache, project_copy, total_examples=6)
    lengths = real_field_lengths(project_copy)
    shortest_real, longest_real = lengths.min(), lengths.max()
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


def bigram_llama(after: dict[int, dict[int, float]], otherwise: dict[int, float]) -> Any:
    """A 1-layer tiny Llama whose logits depend on the last token only: `after[token]` (token id:
    logit) after each token of `after`, `otherwise` after any other; -4 elsewhere.

    Its blocks add nothing, so a position's hidden state is its token's embedding: one unit
    vector per token of `after` and one for the rest; the output head maps each to its logits.
    """
    model = tiny_llama(num_hidden_layers=1)
    states = [*after.values(), otherwise]
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embeddings = model.model.embed_tokens.weight
        embeddings.zero_()
        embeddings[:, len(after)] = 1.0
        for state, token in enumerate(after):
            embeddings[token].zero_()
            embeddings[token, state] = 1.0
        model.model.norm.weight.zero_()
        model.model.norm.weight[: len(states)] = 1.0
        # RMSNorm scales a unit vector to the square root of the width
        scale = model.config.hidden_size**0.5
        model.lm_head.weight.zero_()
        model.lm_head.weight[:, : len(states)] = -4.0 / scale
        for state, scores in enumerate(states):
            for token, score in scores.items():
                model.lm_head.weight[token, state] = score / scale
    return model


@pytest.fixture(scope="module")
def run_on_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A judgeforge cache whose embedded model starts its answer with `query:`, then writes WORDS
    and blank lines, never a full stop, another label or its end of turn."""
    tokenizer = embedded_tokenizer()
    line_break, blank_line, query, colon = tokenizer.convert_tokens_to_ids(
        ["Ċ", "ĊĊ", "query", ":"]
    )
    words = dict.fromkeys(tokenizer.convert_tokens_to_ids(list(WORDS)), 20.0)
    # the chat template's prompt ends with a line break: the answer's first token follows it
    after = {line_break: {query: 30.0}, query: {colon: 30.0}}
    model = bigram_llama(after, {**words, blank_line: 20.0})
    return save_model_cache(model, tmp_path_factory.mktemp("judgeforge-cache"), tokenizer)


def test_a_rag_run_ends_a_field_with_no_sentence_end_at_a_line_break_or_twice_a_real_length(
    project_copy: Path, run_on_model_cache: Path
) -> None:
    # left alone, this model's query would run to the call's token budget (it writes no other
    # label), so no answer would hold a context and a response; the local provider ends a field
    # holding the length drawn for it at its next line break, a field before the last at a word
    # end once it holds twice that, and hands the model the next label
    rows = rag_rows_written_by(run_on_model_cache, project_copy, total_examples=6)
    longest_real = real_field_lengths(project_copy).max()
    assert len(rows) == 6
    words = {word.lstrip("Ġ") for word in WORDS}
    for _, row in rows.iterrows():
        for field in FIELDS:
            value = row[field]
            assert set(value.split()) <= words, (field, value)
            longest = longest_real.loc[int(row["label"]), field]
            # the last field is not capped: it ends at a line break, one in 7 tokens
            bound = longest * FIELD_LONGEST_SHARE if field != FIELDS[-1] else longest + 200
            assert len(value) <= bound + len(" parcel"), (field, value)
