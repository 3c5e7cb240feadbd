"""The reporting pipeline's contract: which catalog entries it reads, and that each may be absent."""

from __future__ import annotations

from kedro.io import CatalogConfigResolver

from judgeforge import settings
from judgeforge.config_loader import RunConfigLoader
from judgeforge.pipelines.reporting import create_pipeline
from tests.conftest import PROJECT_ROOT

# What the other stages write and the report reads, by catalog name.
STAGE_OUTPUTS = {
    "ingestion_report",
    "seed_rows",
    "seed_rejects",
    "generation_report",
    "synthetic_examples",
    "synthetic_rejects",
    "labelling_report",
    "judge_labels",
    "diagnostics_summary",
    "drift_scores",
    "drift_reference",
    "umap_coordinates",
    "training_metrics",
    "test_predictions",
}


def test_reporting_reads_the_stage_outputs_by_name_and_writes_the_report() -> None:
    pipeline = create_pipeline()
    assert pipeline.inputs() == STAGE_OUTPUTS | {"parameters"}
    assert pipeline.outputs() == {"report_html"}


def test_every_stage_output_it_reads_loads_as_none_when_absent() -> None:
    loader = RunConfigLoader(str(PROJECT_ROOT / "conf"), **settings.CONFIG_LOADER_ARGS)
    # the JSON reports come from a dataset factory: resolve each name as Kedro does
    catalog = CatalogConfigResolver(loader["catalog"], credentials=loader["credentials"])
    types = {name: catalog.resolve_pattern(name)["type"] for name in STAGE_OUTPUTS}
    assert {
        name: kind
        for name, kind in types.items()
        if not kind.startswith("judgeforge.datasets.optional.")
    } == {}
    assert catalog.resolve_pattern("report_html")["filepath"].endswith("08_reporting/report.html")
