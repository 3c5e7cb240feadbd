"""The training pipeline: fine-tuning a judge and its evaluation on the real test split."""

from kedro.pipeline import Node, Pipeline, pipeline

from judgeforge.pipelines.publishing.nodes import publish_judge_model
from judgeforge.pipelines.training.nodes import (
    format_judge_examples,
    resolve_training_config,
    score_with_base_model,
    score_with_baselines,
    score_with_judge,
    split_validation,
    summarise_evaluation,
    train_judge,
    write_model_card,
)
from judgeforge.training.distributed import is_worker_process

# The last node every process of a distributed launch runs; what follows it runs on rank 0 alone.
TRAIN_NODE = "training.train_judge"


def create_pipeline(**kwargs) -> Pipeline:
    """Return the training pipeline: format → hold out validation → train → score (judge, zero-shot, baselines) → report → push.

    In a process of a distributed launch other than rank 0 (judgeforge.training.distributed), only
    the nodes up to training: that process joins training and leaves.
    """
    whole = _whole_pipeline()
    return whole.to_nodes(TRAIN_NODE) if is_worker_process() else whole


def _whole_pipeline() -> Pipeline:
    return pipeline(
        [
            Node(
                resolve_training_config,
                inputs=["params:training", "object_store"],
                outputs="resolved_training",
                name="resolve_training_config",
            ),
            Node(
                format_judge_examples,
                inputs=["training_dataset", "resolved_training"],
                outputs=["judge_train_examples", "judge_test_examples"],
                name="format_judge_examples",
            ),
            Node(
                split_validation,
                inputs=["judge_train_examples", "resolved_training"],
                outputs=["judge_fit_examples", "judge_validation_examples"],
                name="split_validation",
            ),
            Node(
                train_judge,
                inputs=["judge_fit_examples", "judge_validation_examples", "resolved_training"],
                outputs=["judge_model", "training_log"],
                name="train_judge",
            ),
            Node(
                score_with_judge,
                inputs=["judge_model", "judge_test_examples"],
                outputs=["fine_tuned_predictions", "judge_scoring"],
                name="score_with_judge",
            ),
            Node(
                score_with_base_model,
                inputs=["judge_test_examples", "resolved_training"],
                outputs="base_model_predictions",
                name="score_with_base_model",
            ),
            Node(
                score_with_baselines,
                inputs=["judge_train_examples", "judge_test_examples", "resolved_training"],
                outputs=["baseline_predictions", "baseline_report"],
                name="score_with_baselines",
            ),
            Node(
                summarise_evaluation,
                inputs=[
                    "fine_tuned_predictions",
                    "base_model_predictions",
                    "baseline_predictions",
                    "baseline_report",
                    "judge_scoring",
                    "training_log",
                    "resolved_training",
                ],
                outputs=[
                    "training_metrics",
                    "test_predictions",
                    "confusion_matrix_plot",
                    "reliability_diagram",
                ],
                name="summarise_evaluation",
            ),
            Node(
                write_model_card,
                inputs=["training_metrics", "training_log", "resolved_training"],
                outputs="model_card",
                name="write_model_card",
            ),
            Node(
                publish_judge_model,
                inputs=[
                    "judge_model",
                    "model_card",
                    "resolved_training",
                    "hub_client",
                    "object_store",
                ],
                outputs="model_publication",
                name="publish_judge_model",
            ),
        ],
        namespace="training",
        prefix_datasets_with_namespace=False,
    )
