"""The reporting pipeline: stage outputs (each may be absent) → sections → `report_html`.

It reads the stages' outputs by their catalog names, so composed with those stages in one run
Kedro runs it last; those entries load as None when their file is absent (see
`judgeforge.datasets.optional`), so it also runs alone on whatever a previous run left.
"""

from kedro.pipeline import Node, Pipeline

from judgeforge.pipelines.reporting.nodes import (
    describe_config,
    render_report,
    report_diagnostics,
    report_generation,
    report_ingestion,
    report_judge,
    report_labelling,
    row_texts,
    summarise_run,
)

CONFIG = "report_config"
TEXTS = "report_row_texts"
SECTIONS = ("run", "ingestion", "generation", "diagnostics", "labelling", "judge")


def create_pipeline(**kwargs) -> Pipeline:
    """Return the reporting pipeline."""
    section = {name: f"report_{name}_section" for name in SECTIONS}
    return Pipeline(
        [
            Node(
                describe_config,
                inputs="parameters",
                outputs=CONFIG,
                name="describe_config_for_report",
            ),
            Node(
                row_texts,
                inputs=["seed_rows", "synthetic_examples", CONFIG],
                outputs=TEXTS,
                name="collect_row_texts_for_report",
            ),
            Node(
                summarise_run,
                inputs=[
                    CONFIG,
                    "ingestion_report",
                    "generation_report",
                    "labelling_report",
                    "diagnostics_summary",
                    "training_metrics",
                ],
                outputs=section["run"],
                name="report_run",
            ),
            Node(
                report_ingestion,
                inputs=["ingestion_report", "seed_rejects", CONFIG],
                outputs=section["ingestion"],
                name="report_ingestion_section",
            ),
            Node(
                report_generation,
                inputs=[
                    "generation_report",
                    "synthetic_examples",
                    "synthetic_rejects",
                    "seed_rows",
                    CONFIG,
                ],
                outputs=section["generation"],
                name="report_generation_section",
            ),
            Node(
                report_diagnostics,
                inputs=[
                    "diagnostics_summary",
                    "drift_scores",
                    "drift_reference",
                    "umap_coordinates",
                    TEXTS,
                    CONFIG,
                ],
                outputs=section["diagnostics"],
                name="report_diagnostics_section",
            ),
            Node(
                report_labelling,
                inputs=["labelling_report", "judge_labels", TEXTS, CONFIG],
                outputs=section["labelling"],
                name="report_labelling_section",
            ),
            Node(
                report_judge,
                inputs=["training_metrics", "test_predictions", TEXTS],
                outputs=section["judge"],
                name="report_judge_section",
            ),
            Node(
                render_report,
                inputs=[section[name] for name in SECTIONS],
                outputs="report_html",
                name="render_report",
            ),
        ]
    )
