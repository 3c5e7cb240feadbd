"""Nodes of the training pipeline: format, fine-tune, score the real test split, report."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pandas as pd
from datasets import DatasetDict
from matplotlib.figure import Figure

from judgeforge.config.training import TrainingConfig
from judgeforge.publishing.object_store import ObjectStore, pull_model_from_object_store
from judgeforge.schema import ROW_ID, SOURCE
from judgeforge.training.evaluation import classification_metrics, confusion_matrices_figure
from judgeforge.training.formatting import (
    AnswerSpace,
    check_template_columns,
    render_prompt,
    training_record,
)
from judgeforge.training.judge import PREDICTION_COLUMN, Judge, probability_column
from judgeforge.training.runtime import resolve_runtime_options
from judgeforge.training.trainer import train_adapter

PROMPT = "prompt"
LABEL = "label"
ANSWER = "answer"
MODEL = "model"
CORRECT = "correct"
FINE_TUNED = "fine_tuned"
BASE_MODEL = "base_model"
HEADLINE_METRICS = ("accuracy", "macro_f1", "weighted_f1")
# Where a base model pulled from the object store lands when model.model_local_path is empty.
PULLED_MODELS_FOLDER = "base_models"


def format_judge_examples(
    training_dataset: DatasetDict, config: TrainingConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the train and test examples: row id, source, rendered prompt, label and target answer."""
    dataset = config.dataset
    splits = (
        (dataset.split, dataset.train_label_column, "dataset.split", "dataset.train_label_column"),
        (
            dataset.test_split_name,
            dataset.test_label_column,
            "dataset.test_split_name",
            "dataset.test_label_column",
        ),
    )
    # Every check runs before any formatting, so a bad config fails before anything heavy happens.
    for split, label_column, split_field, label_field in splits:
        if split not in training_dataset:
            raise ValueError(
                f"{split_field} {split!r} is not a split of training_dataset (it has: {', '.join(training_dataset)})"
            )
        columns = training_dataset[split].column_names
        if label_column not in columns:
            raise ValueError(
                f"{label_field} {label_column!r} is not a column of split {split!r} (columns: {', '.join(columns)})"
            )
        check_template_columns(config.prompt_template, columns, f"split {split!r}")
    if training_dataset[dataset.split].num_rows == 0:
        raise ValueError(f"split {dataset.split!r} (dataset.split) has no rows to train on")
    answer_space = AnswerSpace.from_metric(config.metric)
    train, test = (
        _examples(
            training_dataset[split].to_pandas(), label_column, config.prompt_template, answer_space
        )
        for split, label_column, _, _ in splits
    )
    return train, test


def _examples(
    rows: pd.DataFrame, label_column: str, template: str, answer_space: AnswerSpace
) -> pd.DataFrame:
    answers = [answer_space.answer_for(value) for value in rows[label_column]]
    examples = pd.DataFrame(
        {
            PROMPT: [render_prompt(template, row) for row in rows.to_dict(orient="records")],
            LABEL: [answer_space.label_for_answer(answer) for answer in answers],
            ANSWER: answers,
        }
    )
    # Keep the provenance columns the data carries, first, so predictions trace back to their rows.
    for position, column in enumerate(c for c in (ROW_ID, SOURCE) if c in rows.columns):
        examples.insert(position, column, rows[column].astype(str).to_numpy())
    return examples


def resolve_training_config(config: TrainingConfig, object_store: ObjectStore) -> TrainingConfig:
    """Return the training config, pointed at the base model (and adapter) pulled from the object store when asked."""
    model = config.model
    if not model.pull_model_from_object_store:
        return config
    root = model.model_local_path or f"{config.output.local_path.rstrip('/')}/{PULLED_MODELS_FOLDER}"
    pulled = pull_model_from_object_store(object_store, model, root)
    updates: dict[str, Any] = {"model_local_path": str(root)}
    if "adapter" in pulled:
        updates["peft_model_map"] = {**model.peft_model_map, model.name: str(pulled["adapter"])}
    return config.model_copy(update={"model": model.model_copy(update=updates)})


def train_judge(
    train_examples: pd.DataFrame, config: TrainingConfig
) -> tuple[Judge, dict[str, Any]]:
    """Return the LoRA-fine-tuned judge and the training log (loss history, throughput, fallbacks)."""
    options = resolve_runtime_options(config.training, config.model)
    judge = Judge.trainable(config, options)
    records = [
        training_record(prompt, answer, judge.chat)
        for prompt, answer in zip(train_examples[PROMPT], train_examples[ANSWER])
    ]
    log = train_adapter(judge.model, judge.tokenizer, records, config.training, options)
    return judge, {**log, "runtime": asdict(options)}


def score_with_judge(judge_model: Judge, test_examples: pd.DataFrame) -> pd.DataFrame:
    """Return the fine-tuned judge's predictions and class probabilities on the test examples."""
    return _predictions(judge_model, test_examples, FINE_TUNED)


def score_with_base_model(test_examples: pd.DataFrame, config: TrainingConfig) -> pd.DataFrame:
    """Return the base model's zero-shot predictions and class probabilities on the test examples."""
    return _predictions(Judge.zero_shot(config), test_examples, BASE_MODEL)


def _predictions(judge: Judge, examples: pd.DataFrame, model_name: str) -> pd.DataFrame:
    scored = judge.predictions_frame(
        judge.score_prompts(examples[PROMPT].tolist()), index=examples.index
    )
    identity = examples.drop(columns=[PROMPT, ANSWER])
    frame = pd.concat([identity, scored], axis=1)
    frame.insert(0, MODEL, model_name)
    frame.insert(
        frame.columns.get_loc(PREDICTION_COLUMN) + 1,
        CORRECT,
        frame[LABEL] == frame[PREDICTION_COLUMN],
    )
    return frame


def summarise_evaluation(
    fine_tuned_predictions: pd.DataFrame,
    base_model_predictions: pd.DataFrame,
    training_log: dict[str, Any],
    config: TrainingConfig,
) -> tuple[dict[str, Any], pd.DataFrame, Figure]:
    """Return the metrics (base vs fine-tuned, with lift), all test predictions, and the confusion matrices."""
    labels = list(AnswerSpace.from_metric(config.metric).labels)
    by_model = {
        BASE_MODEL: classification_metrics(
            base_model_predictions[LABEL], base_model_predictions[PREDICTION_COLUMN], labels
        ),
        FINE_TUNED: classification_metrics(
            fine_tuned_predictions[LABEL], fine_tuned_predictions[PREDICTION_COLUMN], labels
        ),
    }
    metrics = {
        "model_name": config.output.model_name,
        "base_model": config.model.name,
        "metric_type": config.metric.type,
        "labels": labels,
        "test_split": config.dataset.test_split_name,
        "probability_columns": [probability_column(label) for label in labels],
        **by_model,
        "lift": {
            name: by_model[FINE_TUNED][name] - by_model[BASE_MODEL][name]
            for name in HEADLINE_METRICS
        },
        "training": training_log["summary"],
    }
    predictions = pd.concat([base_model_predictions, fine_tuned_predictions], ignore_index=True)
    figure = confusion_matrices_figure(
        {"base model (zero-shot)": by_model[BASE_MODEL], "fine-tuned judge": by_model[FINE_TUNED]}
    )
    return metrics, predictions, figure


def write_model_card(
    training_metrics: dict[str, Any], training_log: dict[str, Any], config: TrainingConfig
) -> str:
    """Return the model card: what the judge decides, how it was trained, how well it does, how to call it."""
    hyperparameters = config.training
    runtime = training_log["runtime"]
    summary = training_log["summary"]
    rows = "\n".join(
        f"| {name} | {training_metrics[BASE_MODEL][name]:.3f} | {training_metrics[FINE_TUNED][name]:.3f} "
        f"| {training_metrics['lift'][name]:+.3f} |"
        for name in HEADLINE_METRICS
    )
    per_class = "\n".join(
        f"| {label} | {scores['precision']:.3f} | {scores['recall']:.3f} | {scores['f1']:.3f} | {scores['support']} |"
        for label, scores in training_metrics[FINE_TUNED]["per_class"].items()
    )
    fallbacks = "\n".join(f"- {line}" for line in runtime["fallbacks"]) or "- none"
    answers = (
        "`true` / `false`"
        if config.metric.type == "boolean"
        else ", ".join(f"`{i}` = {label}" for i, label in enumerate(training_metrics["labels"]))
    )
    return f"""# {config.output.model_name or "judgeforge judge"}

A LoRA adapter on **{config.model.name}** that judges a {config.metric.type} metric.
It answers {answers}; class probabilities come from one forward pass over the first token of each answer.

## Prompt template

```text
{config.prompt_template}
```

## Evaluation on the real test split ({training_metrics[FINE_TUNED]["n"]} rows)

| metric | base model (zero-shot) | fine-tuned | lift |
|---|---|---|---|
{rows}

Per class (fine-tuned):

| class | precision | recall | F1 | support |
|---|---|---|---|---|
{per_class}

## Training

- examples: {summary["train_examples"]}, optimizer steps: {summary["optimizer_steps"]}, final loss: {summary["final_train_loss"]:.4f}
- epochs {hyperparameters.num_train_epochs}, batch {hyperparameters.per_device_train_batch_size} × {hyperparameters.gradient_accumulation_steps} accumulation, learning rate {hyperparameters.learning_rate:g} ({runtime["lr_scheduler_type"]}, {hyperparameters.warmup_steps} warmup steps), max length {hyperparameters.max_seq_length}
- LoRA r={config.model.lora_r}, alpha={config.model.lora_alpha}; device {runtime["device"]}, optimizer {runtime["optim"]}, bf16={runtime["bf16"]}, fp16={runtime["fp16"]}
- throughput: {summary["train_tokens_per_second"] or 0:.0f} tokens/s over {summary["train_runtime_s"]:.1f} s

Fallbacks taken on this machine:
{fallbacks}

## Use

```python
from judgeforge.training import Judge

judge = Judge.load("{config.output.local_path.rstrip("/")}/{config.output.model_name}")
judge.predict([{{...}}])  # rows with the template's columns -> prediction + probability_<class>
```

or `judgeforge predict <model_dir> <input.csv|parquet|jsonl> <output.csv|parquet|jsonl>`.
"""
