"""The labelling pipeline through a Kedro runner, and its wiring into the catalog and the SDK."""

from __future__ import annotations

import copy
from pathlib import Path

import datasets
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from judgeforge.config import validate_run_config
from judgeforge.pipelines.labelling import create_pipeline
from judgeforge.sdk import data_generation_pipelines, pipeline_name
from tests.config.conftest import _MINIMAL_RUN_CONFIG
from tests.pipelines.labelling.conftest import labelling, scripted_judge
from tests.support.memory import KeptMemoryDataset
from tests.test_run_globals import catalog_for


def test_pipeline_runs_on_an_in_memory_catalog(openai_server, judge_client, generated, metric, columns, output) -> None:
    openai_server.respond_with(scripted_judge)
    catalog = DataCatalog(
        {
            "generated_dataset": MemoryDataset(generated, copy_mode="assign"),
            "judge_llm": MemoryDataset(judge_client(), copy_mode="assign"),
            "params:data_generation.metric": MemoryDataset(metric, copy_mode="assign"),
            "params:data_generation.labelling": MemoryDataset(labelling(disagreement_policy="drop"), copy_mode="assign"),
            "params:data_generation.output": MemoryDataset(output, copy_mode="assign"),
            "params:data_generation.source_data.dataset.columns": MemoryDataset(columns, copy_mode="assign"),
            "labelling_report": KeptMemoryDataset(),
        }
    )
    SequentialRunner().run(create_pipeline(), catalog)
    assert catalog.load("labelling_report")["agreement"]["overall"]["agree"] == 6
    assert catalog.load("labelled_dataset")["train"].num_rows == generated["train"].num_rows - 2
    assert catalog.load("derived_metric")["derived"] == []


def raw_generation_config(**labelling_settings) -> dict:
    """Return a run config with the given labelling settings and a judge prompt."""
    raw = copy.deepcopy(_MINIMAL_RUN_CONFIG)
    raw["data_generation"]["metric"]["llmaj_source_prompt"] = "Is it toxic? {text}"
    raw["data_generation"]["labelling"] = labelling_settings
    raw["data_generation"]["source_data"]["dataset"]["csv"]["train_file_path"] = "data/01_raw/unlabelled.csv"
    return raw


def generation_config(**labelling_settings):
    """Return a validated run config with the given labelling settings and a judge prompt."""
    return validate_run_config(raw_generation_config(**labelling_settings))


def test_final_folder_is_always_repo_name_and_synthesis_moves_aside_when_judged(tmp_path: Path) -> None:
    judged = catalog_for(raw_generation_config(enabled=True), tmp_path)
    plain = catalog_for(raw_generation_config(enabled=False), tmp_path)
    final = str(tmp_path / "data/generated_data/toxicity-data")

    assert judged.get("generated_dataset")._describe() == {"path": f"{final}-generated"}
    assert judged.get("labelled_dataset")._describe() == {"path": final}
    assert plain.get("generated_dataset")._describe() == {"path": final}
    assert judged.get("labelled_dataset")._describe() == plain.get("labelled_dataset")._describe() == {"path": final}
    assert judged.get("label_only_train_data")._describe() == {"source_type": "csv", "file_path": str(tmp_path / "data/01_raw/unlabelled.csv")}


def test_sdk_runs_labelling_when_enabled_label_only_alone_and_publishing_after() -> None:
    assert data_generation_pipelines(generation_config(enabled=True)) == ["ingestion", "synthesis", "labelling", "diagnostics"]
    assert data_generation_pipelines(generation_config(enabled=False)) == ["ingestion", "synthesis", "diagnostics"]
    label_only = generation_config(enabled=True, label_only_mode=True)
    assert data_generation_pipelines(label_only) == ["ingestion", "label_only"]
    label_only.data_generation.output.push_to_object_store = True
    assert pipeline_name(label_only) == "ingestion+label_only+publishing+training"


def test_labelled_dataset_keeps_the_generated_schema(openai_server, judge_client, generated, metric, columns, output) -> None:
    openai_server.respond_with(scripted_judge)
    catalog = DataCatalog(
        {
            "generated_dataset": MemoryDataset(generated, copy_mode="assign"),
            "judge_llm": MemoryDataset(judge_client(), copy_mode="assign"),
            "params:data_generation.metric": MemoryDataset(metric, copy_mode="assign"),
            "params:data_generation.labelling": MemoryDataset(labelling(disagreement_policy="relabel"), copy_mode="assign"),
            "params:data_generation.output": MemoryDataset(output, copy_mode="assign"),
            "params:data_generation.source_data.dataset.columns": MemoryDataset(columns, copy_mode="assign"),
        }
    )
    SequentialRunner().run(create_pipeline(), catalog)
    labelled: datasets.DatasetDict = catalog.load("labelled_dataset")
    assert labelled["train"].column_names == generated["train"].column_names
    relabelled = labelled["train"].to_pandas().set_index("row_id")["label"]
    assert relabelled.loc[["syn-000002", "syn-000004"]].tolist() == ["0", "1"]
