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
from judgeforge.pipelines.training.nodes import resolve_training_config
from judgeforge.publishing.hub import Hub
from judgeforge.publishing.object_store import ObjectStore, archive_url
from judgeforge.training import Judge
from tests.support.s3_server import BUCKET
from tests.support.tiny_judge import separable_dataset, tiny_judge_config

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
        tiny_judge_config(
            tiny_llama_dir, training={"num_train_epochs": 2, "cross_validation_below": 0}
        )
    )
    judge_dir = tmp_path / "tiny-judge"
    catalog = DataCatalog(
        {
            "training_dataset": MemoryDataset(separable_dataset(16, 8)),
            "params:training": MemoryDataset(config, copy_mode="assign"),
            "object_store": MemoryDataset(ObjectStore(), copy_mode="assign"),
            "hub_client": MemoryDataset(Hub(token=None), copy_mode="assign"),
            **output_datasets(judge_dir),
        }
    )
    pipeline = create_pipeline()
    assert set(OUTPUTS) <= pipeline.all_outputs()

    outputs = SequentialRunner().run(pipeline, catalog)
    assert outputs["model_publication"].load() == {"hub": None, "object_store": None}

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
    log = catalog["training_log"].load()
    # Validation rows are held out of training to pick the epoch and fit the temperature.
    assert log["summary"]["train_examples"] + log["validation"]["rows"] == 16
    fine_tuned = predictions[predictions["model"] == "fine_tuned"].reset_index(drop=True)
    reloaded = Judge.load(judge_dir).predict(
        pd.DataFrame({"text": separable_dataset(16, 8)["test"]["text"]})
    )
    pd.testing.assert_series_equal(
        reloaded["probability_true"], fine_tuned["probability_true"], atol=1e-5
    )


def test_base_model_and_adapter_are_pulled_from_the_object_store(
    tiny_llama_dir: Path, tmp_path: Path, s3_server
) -> None:
    store = ObjectStore(s3_server.storage_options)
    store.push_directory(tiny_llama_dir, archive_url(BUCKET, "base_models", "tiny-llama"))
    adapter = tmp_path / "adapter-src"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    store.push_directory(adapter, archive_url(BUCKET, "adapters", "org/tiny-adapter"))
    raw = tiny_judge_config(tiny_llama_dir)
    raw["model"].update(
        {
            "name": "tiny-llama",
            "pull_model_from_object_store": True,
            "model_object_store_bucket": BUCKET,
            "model_local_path": str(tmp_path / "models"),
            "peft_model_map": {"tiny-llama": "org/tiny-adapter"},
        }
    )
    resolved = resolve_training_config(TrainingConfig.model_validate(raw), store)
    assert resolved.model.model_local_path == str(tmp_path / "models")
    assert (tmp_path / "models" / "tiny-llama" / "config.json").is_file()
    assert Path(resolved.model.peft_model_map["tiny-llama"], "adapter_config.json").is_file()


def test_no_pull_leaves_the_config_alone(tiny_llama_dir: Path) -> None:
    config = TrainingConfig.model_validate(tiny_judge_config(tiny_llama_dir))
    assert resolve_training_config(config, ObjectStore()) is config
