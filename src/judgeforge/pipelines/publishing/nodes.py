"""Publishing nodes: the dataset card, the dataset push, and the judge push."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import datasets

from judgeforge.config.data_generation import DataGenerationConfig, MetricConfig, OutputConfig
from judgeforge.config.training import TrainingConfig
from judgeforge.publishing.card import dataset_card
from judgeforge.publishing.hub import Hub, push_dataset_to_hub, push_model_to_hub
from judgeforge.publishing.object_store import ObjectStore, archive_url


def write_dataset_card(
    final_dataset: datasets.DatasetDict,
    metric: MetricConfig,
    generation: Mapping[str, Any],
    labelling_report: dict[str, Any],
    diagnostics_summary: dict[str, Any],
) -> str:
    """Return the dataset card: metric, config summary, rows per class and split, judge and diagnostics summaries.

    `generation` is the whole data_generation section as a mapping: Kedro turns a typed parameter
    into a model only when no other node reads a typed parameter inside it (the metric, the output).
    """
    config = DataGenerationConfig.model_validate(dict(generation))
    return dataset_card(final_dataset, metric, config, labelling_report, diagnostics_summary)


def publish_dataset(
    final_dataset: datasets.DatasetDict,
    card: str,
    output: OutputConfig,
    hub: Hub,
    object_store: ObjectStore,
) -> dict[str, Any]:
    """Push the dataset to the Hub and/or the object store, as `output` asks; return where it went."""
    receipt: dict[str, Any] = {"hub": None, "object_store": None}
    if output.push_to_hub:
        repo_id = f"{output.hub.organization}/{output.dataset.repo_name}"
        receipt["hub"] = push_dataset_to_hub(
            hub, final_dataset, card, repo_id, output.dataset.private
        )
    if output.push_to_object_store:
        url = archive_url(
            str(output.object_store_bucket), str(output.object_store_blob), output.dataset.repo_name
        )
        with tempfile.TemporaryDirectory(prefix="judgeforge-dataset-") as tmp:
            folder = Path(tmp) / output.dataset.repo_name
            final_dataset.save_to_disk(str(folder))
            receipt["object_store"] = object_store.push_directory(folder, url)
    return receipt


def publish_judge_model(
    judge_model: Any, model_card: str, training: TrainingConfig, hub: Hub, object_store: ObjectStore
) -> dict[str, Any]:
    """Push the trained judge (anything with `save(folder)`) to the Hub (private repo `output.model_name`) and/or the object store."""
    output = training.output
    receipt: dict[str, Any] = {"hub": None, "object_store": None}
    if not (output.push_to_hub or output.push_to_object_store):
        return receipt
    with tempfile.TemporaryDirectory(prefix="judgeforge-model-") as tmp:
        folder = Path(tmp) / Path(output.model_name).name
        judge_model.save(folder)
        if output.push_to_hub:
            receipt["hub"] = push_model_to_hub(
                hub, folder, model_card, output.model_name, private=True
            )
        if output.push_to_object_store:
            url = archive_url(
                str(output.object_store_bucket), str(output.object_store_blob), output.model_name
            )
            receipt["object_store"] = object_store.push_directory(folder, url)
    return receipt
