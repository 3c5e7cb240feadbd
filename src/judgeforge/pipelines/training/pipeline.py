"""The training pipeline: LoRA fine-tuning of a judge and its evaluation on the real test split."""

from kedro.pipeline import Node, Pipeline

from judgeforge.pipelines.training.nodes import (
    format_judge_examples,
    score_with_base_model,
    score_with_judge,
    summarise_evaluation,
    train_judge,
    write_model_card,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Return the training pipeline: format → train → score (fine-tuned and zero-shot) → report."""
    return Pipeline(
        [
            Node(
                format_judge_examples,
                inputs=["training_dataset", "params:training"],
                outputs=["judge_train_examples", "judge_test_examples"],
                name="format_judge_examples",
            ),
            Node(
                train_judge,
                inputs=["judge_train_examples", "params:training"],
                outputs=["judge_model", "training_log"],
                name="train_judge",
            ),
            Node(
                score_with_judge,
                inputs=["judge_model", "judge_test_examples"],
                outputs="fine_tuned_predictions",
                name="score_with_judge",
            ),
            Node(
                score_with_base_model,
                inputs=["judge_test_examples", "params:training"],
                outputs="base_model_predictions",
                name="score_with_base_model",
            ),
            Node(
                summarise_evaluation,
                inputs=[
                    "fine_tuned_predictions",
                    "base_model_predictions",
                    "training_log",
                    "params:training",
                ],
                outputs=["training_metrics", "test_predictions", "confusion_matrix_plot"],
                name="summarise_evaluation",
            ),
            Node(
                write_model_card,
                inputs=["training_metrics", "training_log", "params:training"],
                outputs="model_card",
                name="write_model_card",
            ),
        ]
    )
