"""The labelling pipeline, and the metric-extraction node every pipeline that needs the classes starts with."""

from kedro.pipeline import Node, Pipeline

from judgeforge.pipelines.labelling.nodes import (
    apply_disagreement_policy,
    build_labelling_report,
    extract_metric,
    judge_train_rows,
    require_labels,
    train_rows,
)

COLUMNS = "params:data_generation.source_data.dataset.columns"
LABELLING = "params:data_generation.labelling"
OUTPUT = "params:data_generation.output"


def metric_pipeline() -> Pipeline:
    """Return metric params + judge LLM → `resolved_metric` (in memory) + `derived_metric` (what was derived)."""
    return Pipeline(
        [
            Node(
                extract_metric,
                inputs=["params:data_generation.metric", LABELLING, "judge_llm"],
                outputs=["resolved_metric", "derived_metric"],
                name="extract_metric",
            )
        ]
    )


def create_pipeline(**kwargs) -> Pipeline:
    """Return generated dataset + judge → judge labels, agreement report, and the dataset to train on."""
    return metric_pipeline() + Pipeline(
        [
            Node(train_rows, inputs=["generated_dataset", OUTPUT], outputs="rows_to_judge", name="select_train_rows"),
            Node(
                judge_train_rows,
                inputs=["rows_to_judge", "resolved_metric", COLUMNS, LABELLING, "judge_llm"],
                outputs=["judge_labels", "judge_stats"],
                name="judge_train_rows",
            ),
            Node(
                apply_disagreement_policy,
                inputs=["generated_dataset", "checked_judge_labels", COLUMNS, LABELLING, OUTPUT],
                outputs="labelled_dataset",
                name="apply_disagreement_policy",
            ),
            Node(
                require_labels,
                inputs=["judge_labels", "labelling_report"],
                outputs="checked_judge_labels",
                name="require_labels",
            ),
            Node(
                build_labelling_report,
                inputs=["judge_labels", "judge_stats", "resolved_metric", LABELLING],
                outputs="labelling_report",
                name="report_labelling",
            ),
        ]
    )
