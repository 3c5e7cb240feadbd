"""The ingestion pipeline."""

from kedro.pipeline import Node, Pipeline, pipeline

from judgeforge.pipelines.ingestion.nodes import (
    build_ingestion_report,
    split_seed_rows,
    usable_seed_rows,
    validate_seed_rows,
)

SOURCE = "params:data_generation.source_data"
COLUMNS = f"{SOURCE}.dataset.columns"


def create_pipeline(**kwargs) -> Pipeline:
    """Return seed data → clean rows + rejects (saved) → usable seed rows → enhancement / holdout sets + a report."""
    return pipeline(
        [
            Node(
                validate_seed_rows,
                inputs=[
                    "seed_data",
                    COLUMNS,
                    "params:data_generation.metric",
                    f"{SOURCE}.max_text_chars",
                ],
                outputs=["readable_seed_rows", "seed_rejects"],
                name="validate_seed_rows",
            ),
            Node(
                usable_seed_rows,
                inputs=[
                    "readable_seed_rows",
                    "seed_rejects",
                    "params:data_generation.metric",
                    f"{SOURCE}.dataset",
                ],
                outputs="seed_rows",
                name="check_seed_rows_usable",
            ),
            Node(
                split_seed_rows,
                inputs=[
                    "seed_rows",
                    "params:data_generation.source_data.sampling",
                    f"{COLUMNS}.label",
                ],
                outputs=["enhancement_table", "holdout_table"],
                name="split_enhancement_and_holdout",
            ),
            Node(
                build_ingestion_report,
                inputs=[
                    "seed_data",
                    "seed_rejects",
                    "enhancement_table",
                    "holdout_table",
                    f"{COLUMNS}.label",
                ],
                outputs="ingestion_report",
                name="report_ingestion",
            ),
        ],
        namespace="ingestion",
        prefix_datasets_with_namespace=False,
    )
