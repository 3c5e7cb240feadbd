"""The label-only pipeline: `label_only_train_data` + judge → labelled train split next to the holdout split."""

from kedro.pipeline import Node, Pipeline, pipeline

from judgeforge.pipelines.label_only.nodes import assemble_labelled_dataset, prepare_rows_to_label
from judgeforge.pipelines.labelling.pipeline import (
    COLUMNS,
    OUTPUT,
    ROWS_TO_JUDGE,
    judging_pipeline,
    metric_pipeline,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Return the label-only pipeline (ingestion provides `holdout_table`)."""
    return metric_pipeline() + pipeline(
        [
            Node(
                prepare_rows_to_label,
                inputs=["label_only_train_data", COLUMNS, "resolved_metric", "params:data_generation.source_data.max_text_chars"],
                outputs=["label_only_rows", "label_only_rejects"],
                name="prepare_rows_to_label",
            ),
            pipeline(judging_pipeline(), inputs={ROWS_TO_JUDGE: "label_only_rows"}),
            Node(
                assemble_labelled_dataset,
                inputs=["label_only_rows", "checked_judge_labels", "holdout_table", COLUMNS, OUTPUT],
                outputs="labelled_dataset",
                name="assemble_labelled_dataset",
            ),
        ],
        namespace="label_only",
        prefix_datasets_with_namespace=False,
    )
