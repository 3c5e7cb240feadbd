"""The Kedro door end to end: `kedro run` in a fresh copy of the project, lineage, bad config."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from kedro.framework.startup import bootstrap_project
from kedro.pipeline import Node

from judgeforge.pipeline_registry import (
    DEFAULT_CHAIN,
    UnchainedPipelines,
    pipelines_to_run,
    register_pipelines,
)
from tests.conftest import PROJECT_ROOT
from tests.support.commands import kedro


@pytest.mark.parametrize("flag", ["--pipelines", "--pipeline"])
def test_kedro_run_ingestion_writes_splits_and_report(project_copy: Path, flag: str) -> None:
    result = kedro(project_copy, "run", flag, "ingestion")
    assert result.returncode == 0, result.stderr[-3000:]

    report = json.loads((project_copy / "data/08_reporting/ingestion_report.json").read_text())
    enhancement = pd.read_parquet(project_copy / "data/03_primary/enhancement.parquet")
    holdout = pd.read_parquet(project_copy / "data/03_primary/holdout.parquet")
    assert report["rows_in"] == 120
    assert report["enhancement_rows"] == len(enhancement) > 0
    assert report["holdout_rows"] == len(holdout) > len(enhancement)
    assert set(enhancement["row_id"]).isdisjoint(holdout["row_id"])
    assert set(holdout["label"]) == {"0", "1"}


def test_bad_parameters_fail_before_any_work_with_one_line_per_problem(project_copy: Path) -> None:
    result = kedro(
        project_copy,
        "run",
        "--pipelines",
        "ingestion",
        "--params",
        "data_generation.source_data.sampling.enhancement_fraction=1.5,data_generation.metric.type=ternary",
    )
    assert result.returncode == 2
    assert (
        "data_generation.source_data.sampling.enhancement_fraction: 1.5 — Input should be less than 1"
        in result.stderr
    )
    assert (
        "data_generation.metric.type: 'ternary' — must be one of 'binary' or 'multi-class'"
        in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not (project_copy / "data/02_intermediate/seed_rows.parquet").exists()


def test_team_environment_overrides_base_parameters(project_copy: Path) -> None:
    team = project_copy / "conf" / "team_a"
    team.mkdir()
    (team / "parameters_ingestion.yml").write_text(
        "data_generation:\n  source_data:\n    sampling:\n      enhancement_fraction: 0.5\n"
    )
    result = kedro(project_copy, "run", "--pipelines", "ingestion", "--env", "team_a")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((project_copy / "data/08_reporting/ingestion_report.json").read_text())
    assert report["enhancement_rows"] == 60


def test_kedro_viz_build_writes_a_static_site(project_copy: Path) -> None:
    result = kedro(project_copy, "viz", "build")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (project_copy / "build" / "index.html").is_file()
    pipelines = json.loads((project_copy / "build" / "api" / "main").read_text())
    node_names = {node["name"] for node in pipelines["nodes"]}
    assert {"validate_seed_rows", "split_enhancement_and_holdout", "report_ingestion"} <= node_names
    # each stage of the default chain is a namespace: a box kedro-viz collapses and expands
    namespaces = {name for name in pipelines["modular_pipelines"] if name != "__root__"}
    assert namespaces == set(DEFAULT_CHAIN)
    boxes = {
        child["id"]
        for child in pipelines["modular_pipelines"]["__root__"]["children"]
        if child["type"] == "modularPipeline"
    }
    assert boxes == set(DEFAULT_CHAIN)
    in_ingestion = {
        node["name"]
        for node in pipelines["nodes"]
        if node["type"] == "task" and node["modular_pipelines"] == ["ingestion"]
    }
    assert in_ingestion == {
        "validate_seed_rows",
        "check_seed_rows_usable",
        "split_enhancement_and_holdout",
        "report_ingestion",
    }


def short_name(node: Node) -> str:
    """Return a node's name without its pipeline's namespace."""
    return node.name.removeprefix(f"{node.namespace}.") if node.namespace else node.name


def test_default_pipeline_is_the_whole_chain_in_order() -> None:
    bootstrap_project(PROJECT_ROOT)
    pipelines = register_pipelines()
    assert set(DEFAULT_CHAIN) <= set(pipelines)
    default = pipelines["__default__"]
    default_nodes = {node.name for node in default.nodes}
    for name in DEFAULT_CHAIN:
        assert {node.name for node in pipelines[name].nodes} <= default_nodes
    assert "training_dataset" not in default.inputs()
    order = [short_name(node) for node in default.nodes]
    # the dataset flows synthesis → labelling → the first training node that reads it
    assert (
        order.index("assemble_train_and_test")
        < order.index("apply_disagreement_policy")
        < order.index("format_judge_examples")
    )
    trains_on = {short_name(node) for node in default.nodes if "labelled_dataset" in node.inputs}
    # (and the SFT exports of the final dataset, written only when output.sft_formats asks)
    assert trains_on == {"format_judge_examples", "export_sft_formats"}
    assert {"label_only", "publishing"} <= set(pipelines)
    assert (
        not {node.name for node in pipelines["publishing"].nodes if node.name != "extract_metric"}
        & default_nodes
    )


def test_compositions_feed_training_and_publishing_what_they_write() -> None:
    bootstrap_project(PROJECT_ROOT)
    pipelines = register_pipelines()
    plain = pipelines["ingestion+synthesis+diagnostics+publishing+training"]
    readers = {short_name(node) for node in plain.nodes if "generated_dataset" in node.inputs}
    assert {"format_judge_examples", "write_dataset_card", "publish_dataset"} <= readers
    assert not {"labelled_dataset", "training_dataset", "card_diagnostics_summary"} & plain.inputs()
    judged = pipelines["ingestion+label_only+publishing"]
    card = next(node for node in judged.nodes if short_name(node) == "write_dataset_card")
    assert {"labelled_dataset", "labelling_report", "card_diagnostics_summary"} <= set(card.inputs)
    order = [short_name(node) for node in judged.nodes]
    assert order.index("assemble_labelled_dataset") < order.index("write_dataset_card")


@pytest.mark.parametrize(
    ("names", "runs"),
    [
        # training or publishing with the stage that writes their data: the composition
        (["ingestion", "synthesis", "training"], ["ingestion+synthesis+training"]),
        (["ingestion+synthesis", "training", "reporting"], ["ingestion+synthesis+training"]),
        (["training", "synthesis", "ingestion"], ["ingestion+synthesis+training"]),
        (
            ["ingestion", "synthesis", "labelling", "publishing", "training"],
            ["ingestion+synthesis+labelling+publishing+training"],
        ),
        (["ingestion", "label_only", "publishing"], ["ingestion+label_only+publishing"]),
        # anything else: as Kedro runs it, the union of the named pipelines (no report added)
        (["ingestion", "synthesis"], ["ingestion", "synthesis"]),
        (["ingestion", "synthesis", "diagnostics", "reporting"], None),
        (["training", "reporting"], None),
        (["training"], None),
        (["__default__", "training"], None),
    ],
)
def test_a_comma_list_runs_training_and_publishing_on_what_it_writes(
    names: list[str], runs: list[str] | None
) -> None:
    assert pipelines_to_run(names, register_pipelines()) == (names if runs is None else runs)


def test_a_comma_list_that_can_feed_training_in_no_composition_is_refused() -> None:
    with pytest.raises(UnchainedPipelines) as refused:
        pipelines_to_run(["synthesis", "training"], register_pipelines())
    assert str(refused.value).startswith(
        "--pipelines synthesis,training: training can read what synthesis writes in the same "
        "run only in a registered composition, and synthesis+training is not one"
    )
