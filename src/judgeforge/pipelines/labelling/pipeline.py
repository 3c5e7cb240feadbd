"""The labelling pipeline, the judging fragment it shares with label_only, and the metric-extraction node."""

from kedro.pipeline import Node, Pipeline, pipeline

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
# What the judging fragment judges; a pipeline maps its own rows onto it.
ROWS_TO_JUDGE = "rows_to_judge"


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


def judging_pipeline() -> Pipeline:
    """Return `rows_to_judge` + judge → judge labels (checked for delivery) and the labelling report (labelling and label_only both use it)."""
    return Pipeline(
        [
            Node(
                judge_train_rows,
                inputs=[ROWS_TO_JUDGE, "resolved_metric", COLUMNS, LABELLING, "judge_llm"],
                outputs=["judge_labels", "judge_stats"],
                name="judge_rows",
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


def create_pipeline(**kwargs) -> Pipeline:
    """Return generated dataset + judge → judge labels, agreement report, and the dataset to train on."""
    return metric_pipeline() + pipeline(
        [
            Node(
                train_rows,
                inputs=["generated_dataset", OUTPUT],
                outputs=ROWS_TO_JUDGE,
                name="select_train_rows",
            ),
            judging_pipeline(),
            Node(
                apply_disagreement_policy,
                inputs=["generated_dataset", "checked_judge_labels", COLUMNS, LABELLING, OUTPUT],
                outputs="labelled_dataset",
                name="apply_disagreement_policy",
            ),
        ],
        namespace="labelling",
        prefix_datasets_with_namespace=False,
    )
