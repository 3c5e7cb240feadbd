"""The diagnostics pipeline: train + holdout tables → embeddings, FAISS drift scores, UMAP map, plots, summary."""

from kedro.pipeline import Node, Pipeline, pipeline

from judgeforge.pipelines.diagnostics.nodes import (
    build_holdout_index,
    collect_diagnostic_rows,
    embed_diagnostic_rows,
    measure_coverage,
    plot_drift_by_class,
    plot_drift_histogram,
    plot_umap,
    project_umap,
    score_drift,
    summarise_diagnostics,
)

SETTINGS = "params:data_generation.data_quality_metrics"
COLUMNS = "params:data_generation.source_data.dataset.columns"
METRIC = "params:data_generation.metric"


def create_pipeline(**kwargs) -> Pipeline:
    """Return the diagnostics pipeline."""
    return pipeline(
        [
            Node(
                collect_diagnostic_rows,
                inputs=["train_table", "holdout_table", METRIC, COLUMNS, SETTINGS],
                outputs="diagnostic_rows",
                name="collect_diagnostic_rows",
            ),
            Node(
                embed_diagnostic_rows,
                inputs=["diagnostic_rows", "embedding_client"],
                outputs="text_embeddings",
                name="embed_diagnostic_rows",
            ),
            Node(
                build_holdout_index,
                inputs=["text_embeddings", SETTINGS],
                outputs="faiss_index",
                name="build_holdout_index",
            ),
            Node(
                score_drift,
                inputs=["text_embeddings", "faiss_index", COLUMNS, SETTINGS],
                outputs=["drift_scores", "drift_reference", "drift_report"],
                name="score_drift",
            ),
            Node(
                project_umap,
                inputs=["text_embeddings", COLUMNS, SETTINGS],
                outputs=["umap_coordinates", "umap_report"],
                name="project_umap",
            ),
            Node(
                plot_umap,
                inputs=["umap_coordinates", "umap_report", COLUMNS],
                outputs="umap_plot",
                name="plot_umap",
            ),
            Node(
                plot_drift_histogram,
                inputs=["drift_scores", "drift_reference", "drift_report"],
                outputs="drift_histogram_plot",
                name="plot_drift_histogram",
            ),
            Node(
                plot_drift_by_class,
                inputs=["drift_scores", "drift_report", COLUMNS],
                outputs="drift_by_class_plot",
                name="plot_drift_by_class",
            ),
            Node(
                measure_coverage,
                inputs=[
                    "text_embeddings",
                    "synthetic_examples",
                    COLUMNS,
                    "params:data_generation.diversity",
                    SETTINGS,
                ],
                outputs="coverage_report",
                name="measure_coverage",
            ),
            Node(
                summarise_diagnostics,
                inputs=[
                    "text_embeddings",
                    "drift_scores",
                    "drift_report",
                    "umap_report",
                    "coverage_report",
                    COLUMNS,
                    SETTINGS,
                ],
                outputs="diagnostics_summary",
                name="summarise_diagnostics",
            ),
        ],
        namespace="diagnostics",
        prefix_datasets_with_namespace=False,
    )
