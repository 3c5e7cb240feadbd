"""The training pipeline end to end: SequentialRunner on an in-memory catalog with a tiny random Llama."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset
from kedro_datasets.matplotlib import MatplotlibDataset
from kedro_datasets.pandas import ParquetDataset
from kedro_datasets.text import TextDataset

from judgeforge.config.training import TrainingConfig
from judgeforge.datasets.judge_model_dataset import JudgeModelDataset
from judgeforge.pipelines.training import create_pipeline
from judgeforge.training import Judge
from judgeforge.training.testing import separable_dataset, tiny_judge_config

OUTPUTS = (
    "judge_model",
    "training_metrics",
    "test_predictions",
    "confusion_matrix_plot",
    "training_log",
    "model_card",
)


def output_datasets(directory: Path) -> dict:
    """The file datasets the project catalog uses for the pipeline outputs, under `directory`."""
    return {
        "judge_model": JudgeModelDataset(path=str(directory)),
        "training_metrics": JSONDataset(filepath=str(directory / "metrics.json")),
        "training_log": JSONDataset(filepath=str(directory / "training_log.json")),
        "test_predictions": ParquetDataset(filepath=str(directory / "test_predictions.parquet")),
        "confusion_matrix_plot": MatplotlibDataset(
            filepath=str(directory / "confusion_matrix.png")
        ),
        "model_card": TextDataset(filepath=str(directory / "README.md")),
    }


def test_training_pipeline_trains_evaluates_and_saves_the_judge(
    tiny_llama_dir: Path, tmp_path: Path
) -> None:
    config = TrainingConfig.model_validate(
        tiny_judge_config(tiny_llama_dir, training={"num_train_epochs": 2})
    )
    judge_dir = tmp_path / "tiny-judge"
    catalog = DataCatalog(
        {
            "training_dataset": MemoryDataset(separable_dataset(16, 8)),
            "params:training": MemoryDataset(config, copy_mode="assign"),
            **output_datasets(judge_dir),
        }
    )
    pipeline = create_pipeline()
    assert set(OUTPUTS) <= pipeline.all_outputs()

    SequentialRunner().run(pipeline, catalog)

    metrics = catalog["training_metrics"].load()
    assert {"base_model", "fine_tuned", "lift"} <= metrics.keys()
    assert (
        metrics["lift"]["accuracy"]
        == metrics["fine_tuned"]["accuracy"] - metrics["base_model"]["accuracy"]
    )
    predictions: pd.DataFrame = catalog["test_predictions"].load()
    assert predictions.groupby("model").size().to_dict() == {"base_model": 8, "fine_tuned": 8}
    assert {
        "row_id",
        "source",
        "label",
        "prediction",
        "correct",
        "probability_false",
        "probability_true",
    } <= set(predictions.columns)
    assert (judge_dir / "confusion_matrix.png").stat().st_size > 0
    assert "| accuracy |" in catalog["model_card"].load()
    assert catalog["training_log"].load()["summary"]["train_examples"] == 16
    fine_tuned = predictions[predictions["model"] == "fine_tuned"].reset_index(drop=True)
    reloaded = Judge.load(judge_dir).predict(
        pd.DataFrame({"text": separable_dataset(16, 8)["test"]["text"]})
    )
    pd.testing.assert_series_equal(
        reloaded["probability_true"], fine_tuned["probability_true"], atol=1e-5
    )
