"""The public door: `kedro run --pipelines training` in a copy of the project (alone or after the stages before it), then `judgeforge predict`."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from datasets import Dataset, DatasetDict

from tests.support.commands import judgeforge, kedro
from tests.support.loopback_parameters import write_loopback_parameters
from tests.support.openai_server import example_answers
from tests.support.tiny_judge import SEPARABLE_TEXTS, separable_split, tiny_judge_config

# training.output.local_path / model_name of the tiny config.
JUDGE_DIR = "data/06_models/tiny-judge"


@pytest.mark.parametrize("head", ["classify", "encoder"])
def test_kedro_run_trains_a_judge_and_judgeforge_predict_uses_it(
    head: str, project_copy: Path, tiny_llama_dir: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    train = separable_split(32).to_pandas()
    train["source"] = ["seed" if i < 16 else "synthetic" for i in range(32)]
    train["row_id"] = [f"train-{i}" for i in range(32)]
    test = separable_split(16).to_pandas().assign(source="seed")
    test["row_id"] = [f"holdout-{i}" for i in range(16)]
    DatasetDict(
        {"train": Dataset.from_pandas(train), "test": Dataset.from_pandas(test)}
    ).save_to_disk(str(project_copy / "data/generated_data/customer_complaint"))
    parameters = tiny_judge_config(
        tiny_llama_dir,
        model={"head": head, "encoder_name": str(tiny_bert_dir), "encoder_learning_rate": 5e-3},
    )
    (project_copy / "conf/local/parameters_training.yml").write_text(
        yaml.safe_dump({"training": parameters})
    )

    result = kedro(project_copy, "run", "--pipelines", "training", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]

    judge_dir = project_copy / JUDGE_DIR
    metrics = json.loads((judge_dir / "metrics.json").read_text())
    log = json.loads((judge_dir / "training_log.json").read_text())
    assert metrics["head"] == log["head"] == head
    assert metrics["fine_tuned"]["accuracy"] > 0.75
    assert {"base_model", "minilm_lr_seed_rows", "minilm_lr_train_split"} <= metrics[
        "lift_over"
    ].keys()
    assert set(log["validation"]["row_ids"]) <= set(train["row_id"][:16])
    # 16 seed rows would hold out 3: too few (cross_validation_below 20), so 3-fold over all 16.
    assert log["validation"]["folds"] == 3
    fold_ids = [i for ids in log["validation"]["fold_row_ids"].values() for i in ids]
    assert sorted(fold_ids) == sorted(train["row_id"][:16])
    assert not set(fold_ids) & set(test["row_id"])
    assert (project_copy / "data/08_reporting/reliability_diagram.png").stat().st_size > 0
    baselines = pd.read_parquet(project_copy / "data/07_model_output/baseline_predictions.parquet")
    assert set(baselines["model"]) == {"minilm_lr_seed_rows", "minilm_lr_train_split"}
    card = (judge_dir / "README.md").read_text()
    assert f"head `{head}`" in card and "Cost of 1,000 judgments" in card
    assert "3-fold cross-validation" in card
    # The encoder reads the bare text column; the causal heads read the prompt template.
    assert log["input_template"] == (
        "{text}" if head == "encoder" else parameters["prompt_template"]
    )
    assert ("reads the row's columns without the template's wording" in card) == (head == "encoder")

    rows = tmp_path / "rows.csv"
    pd.DataFrame({"text": [SEPARABLE_TEXTS[0], SEPARABLE_TEXTS[1]]}).to_csv(rows, index=False)
    scored_path = tmp_path / "scored.csv"
    result = judgeforge(
        project_copy,
        "predict",
        "-m",
        str(judge_dir),
        "-i",
        str(rows),
        "-o",
        str(scored_path),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    scored = pd.read_csv(scored_path, dtype={"prediction": str})
    assert list(scored["prediction"]) == ["true", "false"]
    assert (scored["probability_false"] + scored["probability_true"]).round(6).eq(1).all()


def synthesis_of_eight_and_a_tiny_judge(
    project_copy: Path, openai_server, tiny_llama_dir: Path
) -> None:
    """Point synthesis at the loopback server (8 examples) and training at the tiny Llama, 1 epoch."""
    openai_server.respond_with(example_answers)
    write_loopback_parameters(
        project_copy,
        openai_server.base_url,
        generation={
            "total_examples": 8,
            "examples_per_call": 1,
            "async_config": {"max_concurrent_requests": 4, "max_retries": 1},
        },
    )
    (project_copy / "conf/local/parameters_training.yml").write_text(
        yaml.safe_dump(
            {
                "training": tiny_judge_config(
                    tiny_llama_dir,
                    training={"num_train_epochs": 1, "cross_validation_below": 0},
                )
            }
        )
    )


def test_training_seed_gives_the_same_judge_after_the_whole_chain_and_on_its_own(
    project_copy: Path, openai_server, tiny_llama_dir: Path
) -> None:
    # the same rows and training.seed: the judge must not depend on what the process ran before
    # training (ingestion and synthesis in one run, nothing in the other)
    synthesis_of_eight_and_a_tiny_judge(project_copy, openai_server, tiny_llama_dir)
    predictions = project_copy / "data/07_model_output/test_predictions.parquet"

    chain = kedro(project_copy, "run", "--pipelines", "ingestion+synthesis+training")
    assert chain.returncode == 0, chain.stderr[-3000:]
    after_the_chain = pd.read_parquet(predictions).query("model == 'fine_tuned'")
    alone = kedro(project_copy, "run", "--pipelines", "training")
    assert alone.returncode == 0, alone.stderr[-3000:]
    on_its_own = pd.read_parquet(predictions).query("model == 'fine_tuned'")

    assert len(after_the_chain) == 96  # the real holdout rows
    assert {"probability_false", "probability_true"} <= set(after_the_chain.columns)
    pd.testing.assert_frame_equal(after_the_chain, on_its_own, check_exact=True)


def test_kedro_run_with_a_comma_list_in_chain_order_trains_on_what_synthesis_wrote(
    project_copy: Path, openai_server, tiny_llama_dir: Path
) -> None:
    # a fresh project: no generated folder yet; synthesis writes it in the same run, before training
    synthesis_of_eight_and_a_tiny_judge(project_copy, openai_server, tiny_llama_dir)
    assert not (project_copy / "data/generated_data/customer_complaint").exists()

    result = kedro(project_copy, "run", "--pipelines", "ingestion,synthesis,training")

    assert result.returncode == 0, result.stderr[-3000:]
    assert (project_copy / "data/generated_data/customer_complaint/dataset_dict.json").is_file()
    assert (project_copy / JUDGE_DIR / "metrics.json").is_file()
    predictions = pd.read_parquet(project_copy / "data/07_model_output/test_predictions.parquet")
    assert len(predictions.query("model == 'fine_tuned'")) == 96  # the real holdout rows
