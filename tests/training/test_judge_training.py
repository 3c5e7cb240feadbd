"""Training a tiny random Llama as a judge: learning, probabilities, fallbacks, saving and reloading."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from judgeforge.config.training import TrainingConfig
from judgeforge.pipelines.training import nodes
from judgeforge.training import Judge, predict_command
from judgeforge.training.formatting import TemplateColumnError
from judgeforge.training.judge import PREDICTION_COLUMN, probability_column
from tests.support.tiny_judge import SEPARABLE_TEXTS, separable_dataset, tiny_judge_config

GOOD, BAD, MEH = SEPARABLE_TEXTS
# Everything this CPU machine lacks, so the one training run also proves the fallbacks.
GPU_ONLY_OPTIONS = {"bf16": True, "optim": "adamw_8bit", "use_wandb": True}


@pytest.fixture(scope="module")
def boolean_run(
    tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch_module
) -> dict:
    """One training run of the boolean judge, shared by the tests that read its results."""
    monkeypatch_module.delenv("WANDB_API_KEY", raising=False)
    config = TrainingConfig.model_validate(
        tiny_judge_config(
            tiny_llama_dir, training=GPU_ONLY_OPTIONS, model={"use_unsloth_tokenizer": True}
        )
    )
    train, test = nodes.format_judge_examples(separable_dataset(), config)
    judge, log = nodes.train_judge(*nodes.split_validation(train, config), config)
    return {
        "config": config,
        "judge": judge,
        "log": log,
        "test": test,
        "dir": tmp_path_factory.mktemp("judge"),
    }


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_training_lowers_the_loss_and_beats_chance(boolean_run: dict) -> None:
    losses = [entry["loss"] for entry in boolean_run["log"]["history"] if "loss" in entry]
    assert losses[-1] < losses[0] - 1.0
    predictions, _ = nodes.score_with_judge(boolean_run["judge"], boolean_run["test"])
    assert predictions["correct"].mean() > 0.75


def test_class_probabilities_sum_to_one(boolean_run: dict) -> None:
    predictions = boolean_run["judge"].predict(
        [{"text": GOOD}, {"text": BAD}, {"text": "something else"}]
    )
    probabilities = predictions[
        [probability_column("false"), probability_column("true")]
    ].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert list(predictions[PREDICTION_COLUMN][:2]) == ["true", "false"]


def test_gpu_only_options_fall_back_on_cpu_with_a_warning_each(boolean_run: dict) -> None:
    runtime = boolean_run["log"]["runtime"]
    assert (
        runtime["bf16"],
        runtime["optim"],
        runtime["report_to"],
        runtime["use_unsloth_tokenizer"],
    ) == (
        False,
        "adamw_torch",
        "none",
        False,
    )
    assert len(runtime["fallbacks"]) == 4


def test_a_saved_judge_reloads_and_predicts_the_same(boolean_run: dict) -> None:
    rows = pd.DataFrame({"text": [GOOD, BAD, "good bad good"]})
    before = boolean_run["judge"].predict(rows)
    boolean_run["judge"].save(boolean_run["dir"])
    after = Judge.load(boolean_run["dir"]).predict(rows)
    pd.testing.assert_frame_equal(before, after, atol=1e-5)
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "tokenizer.json",
        "judge_config.json",
    } <= {path.name for path in Path(boolean_run["dir"]).iterdir()}


def test_predict_command_writes_rows_with_predictions(boolean_run: dict, tmp_path: Path) -> None:
    boolean_run["judge"].save(boolean_run["dir"])
    source = tmp_path / "rows.csv"
    pd.DataFrame({"id": [1, 2], "text": [GOOD, BAD]}).to_csv(source, index=False)
    assert predict_command(boolean_run["dir"], source, tmp_path / "scored.parquet") == 2
    scored = pd.read_parquet(tmp_path / "scored.parquet")
    assert list(scored.columns) == [
        "id",
        "text",
        PREDICTION_COLUMN,
        probability_column("false"),
        probability_column("true"),
    ]
    assert list(scored[PREDICTION_COLUMN]) == ["true", "false"]


def test_judgeforge_predict_command_line(boolean_run: dict, tmp_path: Path, capsys) -> None:
    from judgeforge.command_line import main

    boolean_run["judge"].save(boolean_run["dir"])
    source = tmp_path / "rows.jsonl"
    pd.DataFrame({"text": [GOOD, BAD]}).to_json(source, orient="records", lines=True)
    assert (
        main(
            [
                "predict",
                "-m",
                str(boolean_run["dir"]),
                "-i",
                str(source),
                "-o",
                str(tmp_path / "out.csv"),
            ]
        )
        == 0
    )
    assert "2 rows scored" in capsys.readouterr().out
    assert list(pd.read_csv(tmp_path / "out.csv", dtype=str)[PREDICTION_COLUMN]) == ["true", "false"]
    assert main(["predict", "-m", str(tmp_path / "no-judge"), "-i", str(source), "-o", str(tmp_path / "x.csv")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("judgeforge: ") and "\n" not in error


def test_judgeforge_predict_refuses_blank_texts_and_names_an_empty_file(boolean_run: dict, tmp_path: Path, capsys) -> None:
    from judgeforge.command_line import main

    boolean_run["judge"].save(boolean_run["dir"])
    blank = tmp_path / "blank.csv"
    pd.DataFrame({"text": [GOOD, "   ", BAD, "\t"]}).to_csv(blank, index=False)
    assert main(["predict", "-m", str(boolean_run["dir"]), "-i", str(blank), "-o", str(tmp_path / "out.csv")]) == 2
    # the last line of stderr (a progress bar may come before it)
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"judgeforge: {blank}: column text is empty or whitespace only in row(s) 2, 4: fill or remove them"
    assert not (tmp_path / "out.csv").exists()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert main(["predict", "-m", str(boolean_run["dir"]), "-i", str(empty), "-o", str(tmp_path / "out.csv")]) == 2
    assert capsys.readouterr().err.strip() == f"judgeforge: {empty}: the input file is empty: no rows to score"


def test_predict_names_the_missing_template_column(boolean_run: dict) -> None:
    with pytest.raises(TemplateColumnError, match=r"\{text\}.*rows to predict"):
        boolean_run["judge"].predict([{"message": GOOD}])


def test_multi_class_judge_answers_class_keys_and_reports_class_names(tiny_llama_dir: Path) -> None:
    classes = ["positive", "negative", "neutral"]
    config = TrainingConfig.model_validate(
        tiny_judge_config(
            tiny_llama_dir,
            metric={"type": "multi_class", "classes": classes},
            training={"num_train_epochs": 1},
        )
    )
    train, test = nodes.format_judge_examples(
        separable_dataset(24, 9, ("positive", "negative", "neutral")), config
    )
    assert list(train["answer"][:3]) == ["0", "1", "2"]
    judge, _ = nodes.train_judge(*nodes.split_validation(train, config), config)
    predictions, _ = nodes.score_with_judge(judge, test)
    probabilities = predictions[[probability_column(name) for name in classes]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert set(predictions[PREDICTION_COLUMN]) <= set(classes)


def test_unavailable_options_warn_one_line_each(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from judgeforge.config.training import HyperparametersConfig, ModelConfig
    from judgeforge.training.runtime import resolve_runtime_options

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    with caplog.at_level(logging.WARNING, logger="judgeforge.training.runtime"):
        options = resolve_runtime_options(
            HyperparametersConfig(
                bf16=False,
                fp16=True,
                optim="paged_adamw_8bit",
                lr_scheduler_type="reduce_lr_on_plateau",
            ),
            ModelConfig(use_unsloth_tokenizer=True),
        )
    assert (options.fp16, options.optim, options.lr_scheduler_type) == (
        False,
        "adamw_torch",
        "constant",
    )
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 5 and all("\n" not in message for message in messages)
