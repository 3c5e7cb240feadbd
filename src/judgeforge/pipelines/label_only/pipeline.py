"""The label-only pipeline: `label_only_train_data` + judge → labelled train split next to the holdout split."""

from kedro.pipeline import Node, Pipeline

from judgeforge.pipelines.label_only.nodes import assemble_labelled_dataset, prepare_rows_to_label
from judgeforge.pipelines.labelling.nodes import build_labelling_report, judge_train_rows
from judgeforge.pipelines.labelling.pipeline import COLUMNS, LABELLING, OUTPUT, metric_pipeline


def create_pipeline(**kwargs) -> Pipeline:
    """Return the label-only pipeline (ingestion provides `holdout_table`)."""
    return metric_pipeline() + Pipeline(
        [
            Node(
                prepare_rows_to_label,
                inputs=["label_only_train_data", COLUMNS, "resolved_metric", "params:data_generation.source_data.max_text_chars"],
                outputs=["label_only_rows", "label_only_rejects"],
                name="prepare_rows_to_label",
            ),
            Node(
                judge_train_rows,
                inputs=["label_only_rows", "resolved_metric", COLUMNS, LABELLING, "judge_llm"],
                outputs=["judge_labels", "judge_stats"],
                name="judge_label_only_rows",
            ),
            Node(
                assemble_labelled_dataset,
                inputs=["label_only_rows", "judge_labels", "holdout_table", COLUMNS, OUTPUT],
                outputs="labelled_dataset",
                name="assemble_labelled_dataset",
            ),
            Node(
                build_labelling_report,
                inputs=["judge_labels", "judge_stats", "resolved_metric", LABELLING],
                outputs="labelling_report",
                name="report_label_only",
            ),
        ]
    )
