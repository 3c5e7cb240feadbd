"""Nodes of the training pipeline: format, hold out validation, fine-tune, score the real test split, report."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
from datasets import DatasetDict
from matplotlib.figure import Figure
from transformers import set_seed

from judgeforge.config.training import TrainingConfig, template_placeholders
from judgeforge.llm.types import DEFAULT_PRICES
from judgeforge.publishing.object_store import ObjectStore, pull_model_from_object_store
from judgeforge.schema import ROW_ID, SEED_SOURCE, SOURCE
from judgeforge.training.baselines import embed_features, logistic_regression_probabilities
from judgeforge.training.calibration import (
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    probabilities_at,
    reliability_diagram,
)
from judgeforge.training.distributed import bind_device
from judgeforge.training.evaluation import classification_metrics, confusion_matrices_figure
from judgeforge.training.formatting import (
    AnswerSpace,
    check_template_columns,
    render_prompt,
    training_record,
)
from judgeforge.training.judge import (
    CLASSIFY,
    ENCODER,
    GENERATE,
    HEADS,
    PREDICTION_COLUMN,
    SCORING_BATCH_SIZE,
    Judge,
    probability_column,
)
from judgeforge.training.runtime import RuntimeOptions, resolve_runtime_options, use_free_cores
from judgeforge.training.scoring import mean_pooled_vectors
from judgeforge.training.selection import (
    FOLD,
    BestEpoch,
    StopAtEpoch,
    better,
    validation_scores,
    validation_split,
)
from judgeforge.training.trainer import train_adapter, train_classifier

logger = logging.getLogger(__name__)

LABEL = "label"
PROMPT = "prompt"
ANSWER = "answer"
MODEL = "model"
CORRECT = "correct"
FINE_TUNED = "fine_tuned"
BASE_MODEL = "base_model"
SEED_BASELINE = "minilm_lr_seed_rows"
TRAIN_BASELINE = "minilm_lr_train_split"
BASELINE_TITLES = {
    BASE_MODEL: "base model (zero-shot)",
    SEED_BASELINE: "MiniLM + logistic regression, real seed rows only",
    TRAIN_BASELINE: "MiniLM + logistic regression, whole train split",
}
HEADLINE_METRICS = ("accuracy", "macro_f1", "weighted_f1")
# Where a base model pulled from the object store lands when model.model_local_path is empty.
PULLED_MODELS_FOLDER = "base_models"
# A temperature fitted on fewer validation rows than this is noise, not calibration.
MIN_CALIBRATION_ROWS = 8
# LLM judges the fine-tuned judge replaces, priced from the provider price table.
REFERENCE_LLM_JUDGES = ("gpt-4o-mini", "gpt-4.1", "gemini-2.5-flash")
# An LLM judge answers a JSON label with a one-sentence rationale (as the labelling judge does).
LLM_JUDGE_OUTPUT_TOKENS = 40


def format_judge_examples(
    training_dataset: DatasetDict, config: TrainingConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the train and test examples: row id, source, the template's columns, rendered prompt, label and target answer."""
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
    reserved = {PROMPT, LABEL, ANSWER, MODEL, CORRECT, PREDICTION_COLUMN} & set(
        template_placeholders(config.prompt_template)
    )
    if reserved:
        raise ValueError(
            f"prompt_template uses {', '.join(sorted(reserved))}: names the judge's outputs use; "
            "rename that column"
        )
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
    # Provenance first, so predictions trace back to their rows; then what the template reads.
    columns = [c for c in (ROW_ID, SOURCE) if c in rows.columns]
    columns += [c for c in template_placeholders(template) if c not in columns]
    examples = rows[columns].reset_index(drop=True)
    for column in (c for c in (ROW_ID, SOURCE) if c in rows.columns):
        examples[column] = examples[column].astype(str)
    # The whole prompt, for reading and for what an LLM judge would read; heads render their own.
    examples[PROMPT] = [render_prompt(template, row) for row in rows.to_dict(orient="records")]
    examples[LABEL] = [answer_space.label_for_answer(answer) for answer in answers]
    examples[ANSWER] = answers
    return examples


def resolve_training_config(config: TrainingConfig, object_store: ObjectStore) -> TrainingConfig:
    """Return the training config, pointed at the base model (and adapter) pulled from the object store when asked."""
    model = config.model
    if not model.pull_model_from_object_store:
        return config
    root = (
        model.model_local_path or f"{config.output.local_path.rstrip('/')}/{PULLED_MODELS_FOLDER}"
    )
    pulled = pull_model_from_object_store(object_store, model, root)
    updates: dict[str, Any] = {"model_local_path": str(root)}
    if "adapter" in pulled:
        updates["peft_model_map"] = {**model.peft_model_map, model.name: str(pulled["adapter"])}
    return config.model_copy(update={"model": model.model_copy(update=updates)})


def split_validation(
    train_examples: pd.DataFrame, config: TrainingConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (the rows the judge trains on, the validation rows): real seed rows of the train split, never test rows.

    Under k-fold selection the validation rows carry their fold in column `validation_fold` and
    the rows to train on are all train rows.
    """
    hyperparameters = config.training
    fit, validation, origin = validation_split(
        train_examples,
        LABEL,
        hyperparameters.validation_fraction,
        hyperparameters.seed,
        hyperparameters.cross_validation_below,
        hyperparameters.cross_validation_folds,
    )
    logger.info(
        "validation: %d of %d train rows, from %s", len(validation), len(train_examples), origin
    )
    return fit, validation


def train_judge(
    fit_examples: pd.DataFrame, validation_examples: pd.DataFrame, config: TrainingConfig
) -> tuple[Judge, dict[str, Any]]:
    """Return the fine-tuned judge (best head and epoch on validation, temperature fitted) and its training log."""
    options = resolve_runtime_options(config.training, config.model)
    bind_device(options.device)
    use_free_cores()
    heads = HEADS if config.model.head == "auto" else (config.model.head,)
    if len(heads) > 1 and validation_examples.empty:
        logger.warning(
            "head auto needs validation rows and there are none; training the generate head"
        )
        heads = (GENERATE,)
    cross_validated = FOLD in validation_examples
    select = _cross_validate if cross_validated else _hold_out
    candidates: dict[str, dict[str, Any]] = {}
    held_out: dict[str, tuple[Judge | None, np.ndarray, np.ndarray]] = {}
    for head in heads:
        candidates[head], held_out[head] = select(
            head, fit_examples, validation_examples, config, options
        )
    best = heads[0]
    for head in heads[1:]:
        if better(candidates[head]["validation"], candidates[best]["validation"]):
            best = head
    if len(heads) > 1:
        logger.info(
            "head auto: %s",
            ", ".join(
                f"{head} {entry['validation']['macro_f1']:.3f}"
                for head, entry in candidates.items()
            )
            + f" (validation macro-F1) -> {best}",
        )
    judge, validation_logits, truth = held_out[best]
    if cross_validated:
        logger.info(
            "training the %s head on all %d train rows for the %s epoch(s) k-fold chose",
            best,
            len(fit_examples),
            candidates[best]["best_epoch"],
        )
        judge, log, _ = _train_head(
            best,
            fit_examples,
            fit_examples.iloc[:0],
            config,
            options,
            candidates[best]["best_epoch"],
        )
    else:
        log = candidates[best].pop("log")
    for entry in candidates.values():
        entry.pop("log", None)
    calibration = _calibrate(judge, validation_logits, truth, config)
    return judge, {
        "history": log["history"],
        **({"processes": log["processes"]} if "processes" in log else {}),
        "summary": log["summary"],
        "runtime": asdict(options),
        "head": judge.head,
        "input_template": judge.input_template,
        "system_prompt": judge.chat.system if judge.chat else None,
        "candidates": candidates,
        "validation": {
            "method": f"{config.training.cross_validation_folds}-fold cross-validation"
            if cross_validated
            else "held out",
            "folds": config.training.cross_validation_folds if cross_validated else None,
            "rows": len(validation_examples),
            "row_ids": validation_examples[ROW_ID].tolist()
            if ROW_ID in validation_examples
            else [],
            **(
                {"fold_row_ids": _fold_row_ids(validation_examples)}
                if cross_validated and ROW_ID in validation_examples
                else {}
            ),
            "by_source": validation_examples[SOURCE].value_counts().to_dict()
            if SOURCE in validation_examples
            else {},
        },
        "calibration": calibration,
    }


def _fold_row_ids(validation_examples: pd.DataFrame) -> dict[str, list[str]]:
    return {
        str(fold): rows[ROW_ID].tolist()
        for fold, rows in validation_examples.groupby(FOLD, sort=True)
    }


def _hold_out(
    head: str,
    fit_examples: pd.DataFrame,
    validation_examples: pd.DataFrame,
    config: TrainingConfig,
    options: RuntimeOptions,
) -> tuple[dict[str, Any], tuple[Judge, np.ndarray, np.ndarray]]:
    """Train one head, the held-out validation rows picking its epoch; return its entry and its validation logits."""
    judge, log, selector = _train_head(head, fit_examples, validation_examples, config, options)
    logits, truth = (
        (selector.epoch_logits[selector.epochs.index(selector.best)], selector.truth)
        if selector
        else (np.zeros((0, len(judge.labels))), np.zeros(0, dtype=int))
    )
    entry = {
        "head": head,
        "epochs": selector.epochs if selector else [],
        "best_epoch": selector.best["epoch"] if selector else None,
        "validation": selector.best if selector else None,
        "train_runtime_s": log["summary"]["train_runtime_s"],
        "log": log,
    }
    return entry, (judge, logits, truth)


def _cross_validate(
    head: str,
    fit_examples: pd.DataFrame,
    validation_examples: pd.DataFrame,
    config: TrainingConfig,
    options: RuntimeOptions,
) -> tuple[dict[str, Any], tuple[None, np.ndarray, np.ndarray]]:
    """Train one head once per fold, all epochs, scoring the fold's rows after each; pick the epoch
    whose out-of-fold predictions over all folds score best; return its entry and those logits."""
    # Every fold runs every epoch, so that each epoch is scored on every validation row.
    all_epochs = config.model_copy(
        update={
            "training": config.training.model_copy(
                update={"early_stopping_patience": config.training.num_train_epochs}
            )
        }
    )
    fold_logits, fold_truth, fold_epochs, fold_train_rows, seconds = [], [], [], [], 0.0
    for fold, held_out in validation_examples.groupby(FOLD, sort=True):
        logger.info("%s head, fold %d: validating on %d rows", head, fold, len(held_out))
        _, log, selector = _train_head(
            head, fit_examples.drop(index=held_out.index), held_out, all_epochs, options
        )
        fold_logits.append(selector.epoch_logits)
        fold_truth.append(selector.truth)
        fold_epochs.append(selector.epochs)
        fold_train_rows.append(log["summary"]["train_examples"])
        seconds += log["summary"]["train_runtime_s"]
    truth = np.concatenate(fold_truth)
    labels = len(AnswerSpace.from_metric(config.metric).labels)
    epochs_run = min(len(logits) for logits in fold_logits)
    pooled = [
        np.concatenate([logits[epoch] for logits in fold_logits]) for epoch in range(epochs_run)
    ]
    epochs = [
        {"epoch": epoch + 1, **validation_scores(pooled[epoch], truth, labels)}
        for epoch in range(epochs_run)
    ]
    best = None
    for scores in epochs:
        if better(scores, best):
            best = scores
    logger.info(
        "%s head, %d-fold: out-of-fold macro-F1 per epoch %s -> epoch %d",
        head,
        len(fold_logits),
        ", ".join(f"{scores['macro_f1']:.3f}" for scores in epochs),
        best["epoch"],
    )
    entry = {
        "head": head,
        "epochs": epochs,
        "fold_epochs": fold_epochs,
        "fold_train_rows": fold_train_rows,
        "best_epoch": best["epoch"],
        "validation": best,
        "train_runtime_s": seconds,
    }
    return entry, (None, pooled[best["epoch"] - 1], truth)


def _train_head(
    head: str,
    fit_examples: pd.DataFrame,
    validation_examples: pd.DataFrame,
    config: TrainingConfig,
    options: RuntimeOptions,
    stop_at_epoch: int | None = None,
) -> tuple[Judge, dict[str, Any], BestEpoch | None]:
    """Train one head; validation rows, when given, pick its epoch; return the judge, its log and the selector."""
    # The new head and the LoRA matrices are drawn from torch's global generator; the Trainer
    # seeds it only after the model exists, so without this the initial weights (and the judge)
    # depend on whatever the process ran before.
    set_seed(config.training.seed)
    judge = Judge.trainable(config, options, head)
    prompts, truncated = judge.render(fit_examples)
    callbacks: list[Any] = [StopAtEpoch(stop_at_epoch)] if stop_at_epoch else []
    selector = None
    if not validation_examples.empty:
        validation_prompts, _ = judge.render(validation_examples)
        selector = BestEpoch(
            judge,
            validation_prompts,
            _class_indices(validation_examples, judge),
            config.training.early_stopping_patience,
        )
        callbacks.append(selector)
    if head == GENERATE:
        records = [
            training_record(prompt, answer, judge.chat)
            for prompt, answer in zip(prompts, fit_examples[ANSWER])
        ]
        log = train_adapter(
            judge.model, judge.tokenizer, records, config.training, options, callbacks
        )
    else:
        learning_rate = (
            config.training.learning_rate
            if head == CLASSIFY
            else config.model.encoder_learning_rate
        )
        prompts_ids = judge.inputs_ids(prompts)
        if head == ENCODER:
            judge.model.probe_head(
                mean_pooled_vectors(
                    judge.model,
                    prompts_ids,
                    judge.tokenizer.pad_token_id,
                    config.training.max_seq_length,
                    SCORING_BATCH_SIZE,
                ),
                _class_indices(fit_examples, judge),
                config.training.seed,
            )
        log = train_classifier(
            judge.model,
            judge.tokenizer,
            prompts_ids,
            _class_indices(fit_examples, judge),
            config.training,
            options,
            learning_rate,
            callbacks,
        )
    if selector:
        selector.restore_best()
    log["summary"]["truncated_rows"] = truncated
    return judge, log, selector


def _class_indices(examples: pd.DataFrame, judge: Judge) -> np.ndarray:
    return np.array([judge.labels.index(label) for label in examples[LABEL]], dtype=int)


def _calibrate(
    judge: Judge, logits: np.ndarray, truth: np.ndarray, config: TrainingConfig
) -> dict[str, Any]:
    """Fit the judge's temperature on validation logits (held out, or out-of-fold) when asked and there are enough; return what was done."""
    rows = len(truth)
    if not config.training.calibrate:
        return {"applied": False, "temperature": 1.0, "reason": "training.calibrate is false"}
    if rows < MIN_CALIBRATION_ROWS:
        return {
            "applied": False,
            "temperature": 1.0,
            "reason": f"{rows} validation rows; temperature scaling needs at least {MIN_CALIBRATION_ROWS}",
        }
    judge.temperature = fit_temperature(logits, truth)
    return {
        "applied": True,
        "temperature": judge.temperature,
        "validation_rows": rows,
        "validation_log_loss_before": negative_log_likelihood(logits, truth),
        "validation_log_loss_after": negative_log_likelihood(logits, truth, judge.temperature),
    }


def score_with_judge(
    judge_model: Judge, test_examples: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Return the fine-tuned judge's predictions on the test examples and the cost of scoring them."""
    threads = use_free_cores()
    started = time.perf_counter()
    inputs, truncated = judge_model.render(test_examples)
    probabilities = judge_model.score_prompts(inputs)
    seconds = time.perf_counter() - started

    def tokens_mean(texts: list[str]) -> float:
        return float(np.mean([len(ids) for ids in judge_model.inputs_ids(texts)])) if texts else 0.0

    scoring = {
        "rows": len(test_examples),
        "seconds": seconds,
        "rows_per_second": len(test_examples) / seconds if seconds > 0 else None,
        "truncated_rows": truncated,
        "cpu_threads": threads,
        "precision": judge_model.precision,
        # What the judge read (the encoder reads the feature columns alone) and what an LLM judge
        # would read: the whole rendered prompt template.
        "input_tokens_mean": tokens_mean(inputs),
        "prompt_tokens_mean": tokens_mean(test_examples[PROMPT].tolist()),
    }
    return _predictions(test_examples, probabilities, judge_model.labels, FINE_TUNED), scoring


def score_with_base_model(test_examples: pd.DataFrame, config: TrainingConfig) -> pd.DataFrame:
    """Return the base model's zero-shot predictions and class probabilities on the test examples."""
    use_free_cores()
    judge = Judge.zero_shot(config)
    prompts, _ = judge.render(test_examples)
    return _predictions(test_examples, judge.score_prompts(prompts), judge.labels, BASE_MODEL)


def score_with_baselines(
    train_examples: pd.DataFrame, test_examples: pd.DataFrame, config: TrainingConfig
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Return MiniLM + logistic regression predictions on the test examples (trained on the real seed rows alone, and on the whole train split) and what each trained on."""
    labels = AnswerSpace.from_metric(config.metric).labels
    seeds = (
        train_examples[SOURCE] == SEED_SOURCE
        if SOURCE in train_examples
        else pd.Series(False, index=train_examples.index)
    ).to_numpy()
    use_free_cores()
    train_vectors = embed_features(train_examples, config.prompt_template)
    test_vectors = embed_features(test_examples, config.prompt_template)
    frames, report = [], {}
    for name, rows in ((SEED_BASELINE, seeds), (TRAIN_BASELINE, np.ones(len(seeds), bool))):
        classes = train_examples.loc[rows, LABEL].nunique()
        report[name] = {"train_rows": int(rows.sum())}
        if classes < 2:
            report[name]["skipped"] = (
                f"its train rows hold {classes} class(es); a classifier needs two"
            )
            continue
        probabilities = logistic_regression_probabilities(
            train_vectors[rows],
            train_examples.loc[rows, LABEL],
            test_vectors,
            labels,
            config.training.seed,
        )
        frames.append(_predictions(test_examples, probabilities, labels, name))
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), report


def _predictions(
    examples: pd.DataFrame, probabilities: np.ndarray, labels: tuple[str, ...], model_name: str
) -> pd.DataFrame:
    identity = examples.drop(columns=[PROMPT, ANSWER])
    best = probabilities.argmax(axis=1) if len(probabilities) else np.zeros(0, dtype=int)
    frame = identity.assign(
        **{
            MODEL: model_name,
            PREDICTION_COLUMN: [labels[i] for i in best],
            CORRECT: [labels[i] == label for i, label in zip(best, identity[LABEL])],
        },
        **{probability_column(label): probabilities[:, i] for i, label in enumerate(labels)},
    )
    return frame[[MODEL, *[c for c in frame.columns if c != MODEL]]]


def summarise_evaluation(
    fine_tuned_predictions: pd.DataFrame,
    base_model_predictions: pd.DataFrame,
    baseline_predictions: pd.DataFrame,
    baseline_report: dict[str, Any],
    judge_scoring: dict[str, Any],
    training_log: dict[str, Any],
    config: TrainingConfig,
) -> tuple[dict[str, Any], pd.DataFrame, Figure, Figure]:
    """Return the metrics (judge vs every baseline, with lift, calibration and cost), the judge's and the base model's test predictions, the confusion matrices and the reliability diagram."""
    labels = list(AnswerSpace.from_metric(config.metric).labels)
    predictions = pd.concat([base_model_predictions, fine_tuned_predictions], ignore_index=True)
    scored = pd.concat([predictions, baseline_predictions], ignore_index=True)
    by_model = {
        name: classification_metrics(rows[LABEL], rows[PREDICTION_COLUMN], labels)
        for name, rows in scored.groupby(MODEL, sort=False)
    }
    compared = [name for name in (BASE_MODEL, SEED_BASELINE, TRAIN_BASELINE) if name in by_model]
    lift_over = {
        name: {m: by_model[FINE_TUNED][m] - by_model[name][m] for m in HEADLINE_METRICS}
        for name in compared
    }
    beats_seeds = lift_over[SEED_BASELINE]["macro_f1"] > 0 if SEED_BASELINE in lift_over else None
    if beats_seeds is False:
        logger.warning(
            "the fine-tuned judge does not beat the baseline trained on the real seed rows alone: "
            "macro-F1 %.3f vs %.3f for MiniLM + logistic regression on %d seed rows",
            by_model[FINE_TUNED]["macro_f1"],
            by_model[SEED_BASELINE]["macro_f1"],
            baseline_report[SEED_BASELINE]["train_rows"],
        )
    calibration = training_log["calibration"]
    probabilities = {
        name: (
            rows[[probability_column(label) for label in labels]].to_numpy(),
            np.array([labels.index(label) for label in rows[LABEL]], dtype=int),
        )
        for name, rows in scored.groupby(MODEL, sort=False)
    }
    judge_probabilities, truth = probabilities[FINE_TUNED]
    # p = softmax(z / T), so softmax(T · log p) = softmax(z): the judge before temperature scaling.
    uncalibrated = probabilities_at(
        calibration["temperature"] * np.log(np.clip(judge_probabilities, 1e-300, None))
    )
    curves = {"fine-tuned judge": (judge_probabilities, truth)}
    if calibration["applied"]:
        curves["fine-tuned judge, before temperature scaling"] = (uncalibrated, truth)
    curves.update({BASELINE_TITLES[name]: probabilities[name] for name in compared})
    metrics = {
        "model_name": config.output.model_name,
        "base_model": config.model.name,
        "head": training_log["head"],
        "metric_type": config.metric.type,
        "labels": labels,
        "test_split": config.dataset.test_split_name,
        "probability_columns": [probability_column(label) for label in labels],
        **by_model,
        "lift": lift_over[BASE_MODEL],
        "lift_over": lift_over,
        "beats_seed_rows_baseline": beats_seeds,
        "baselines": baseline_report,
        "calibration": {
            **calibration,
            "test_ece": expected_calibration_error(judge_probabilities, truth),
            "test_ece_before_temperature": expected_calibration_error(uncalibrated, truth),
            **{
                f"test_ece_{name}": expected_calibration_error(*probabilities[name])
                for name in compared
            },
        },
        "selection": {
            "candidates": training_log["candidates"],
            "validation": {
                k: v
                for k, v in training_log["validation"].items()
                if k not in ("row_ids", "fold_row_ids")
            },
        },
        "truncated_rows": {
            "train": training_log["summary"]["truncated_rows"],
            "test": judge_scoring["truncated_rows"],
        },
        "cost": _cost(judge_scoring, training_log["runtime"]["device"]),
        "training": training_log["summary"],
    }
    figure = confusion_matrices_figure(
        {
            **{BASELINE_TITLES[name]: by_model[name] for name in compared},
            "fine-tuned judge": by_model[FINE_TUNED],
        }
    )
    return metrics, predictions, figure, reliability_diagram(curves)


def _cost(judge_scoring: dict[str, Any], device: str) -> dict[str, Any]:
    """Return seconds per 1,000 judgments here and what 1,000 judgments of the same prompts cost an LLM judge."""
    rate = judge_scoring["rows_per_second"]
    tokens = judge_scoring["prompt_tokens_mean"]
    return {
        "judge_rows_per_second": rate,
        "judge_seconds_per_1000": 1000 / rate if rate else None,
        "device": device,
        "cpu_threads": judge_scoring["cpu_threads"],
        "precision": judge_scoring["precision"],
        "prompt_tokens_mean": tokens,
        "input_tokens_mean": judge_scoring["input_tokens_mean"],
        "llm_judge_output_tokens": LLM_JUDGE_OUTPUT_TOKENS,
        "llm_judge_usd_per_1000": {
            model: 1000 * DEFAULT_PRICES[model].cost(round(tokens), LLM_JUDGE_OUTPUT_TOKENS)
            for model in REFERENCE_LLM_JUDGES
        },
    }


def _input_template_note(
    input_template: str, prompt_template: str, system_prompt: str | None
) -> str:
    """Return the card's lines on what the model reads, when that is not the prompt template alone."""
    if system_prompt is not None:
        return (
            "\nThe template is the user's message of a chat whose system message is the judge's "
            f"own:\n\n```text\n{system_prompt}\n```\n"
        )
    if input_template == prompt_template:
        return ""
    return (
        "\nThe encoder reads the row's columns without the template's wording "
        f"(`{{column}}` is the row's value):\n\n```text\n{input_template}\n```\n"
    )


def _precision_said(precision: str) -> str:
    """How the card's cost line says the precision a judge scored in (nothing for float32)."""
    said = {
        "int8": ", linear layers in int8 (model.int8_inference)",
        "bfloat16": ", the whole model in bfloat16 (a CPU with AMX)",
    }
    return said.get(precision, "")


def write_model_card(
    training_metrics: dict[str, Any], training_log: dict[str, Any], config: TrainingConfig
) -> str:
    """Return the model card: what the judge decides, how it was chosen and trained, how well and how cheaply it does it, how to call it."""
    hyperparameters = config.training
    runtime = training_log["runtime"]
    summary = training_log["summary"]
    head = training_metrics["head"]
    compared = [
        name for name in (BASE_MODEL, SEED_BASELINE, TRAIN_BASELINE) if name in training_metrics
    ]
    header = " | ".join(BASELINE_TITLES[name] for name in compared)
    rows = "\n".join(
        f"| {metric} | "
        + " | ".join(f"{training_metrics[name][metric]:.3f}" for name in compared)
        + f" | **{training_metrics[FINE_TUNED][metric]:.3f}** | "
        + " / ".join(f"{training_metrics['lift_over'][name][metric]:+.3f}" for name in compared)
        + " |"
        for metric in HEADLINE_METRICS
    )
    per_class = "\n".join(
        f"| {label} | {scores['precision']:.3f} | {scores['recall']:.3f} | {scores['f1']:.3f} | {scores['support']} |"
        for label, scores in training_metrics[FINE_TUNED]["per_class"].items()
    )
    skipped = "".join(
        f"\n- {BASELINE_TITLES[name]}: not scored, {entry['skipped']}"
        for name, entry in training_metrics["baselines"].items()
        if "skipped" in entry
    )
    verdict = {
        True: "The judge beats the baseline trained on the real seed rows alone.",
        False: "**The judge does not beat the baseline trained on the real seed rows alone**: "
        "more or better training rows, or another head, are needed before it is worth deploying.",
        None: "No seed-rows baseline could be trained, so there is no verdict against it.",
    }[training_metrics["beats_seed_rows_baseline"]]
    candidates = "\n".join(
        f"| {name} | "
        + (
            f"{entry['validation']['macro_f1']:.3f} | {entry['validation']['log_loss']:.3f} | {entry['best_epoch']} | "
            + ", ".join(f"{e['macro_f1']:.3f}" for e in entry["epochs"])
            if entry["validation"]
            else "– | – | – | –"
        )
        + f" | {entry['train_runtime_s']:.1f} |"
        for name, entry in training_log["candidates"].items()
    )
    validation = training_log["validation"]
    selection_method = (
        f"{validation['method']}: each fold's model trains on the other train rows and scores its "
        "fold after every epoch; the epoch (and head) whose out-of-fold predictions over all folds "
        "score best (macro-F1, then log-loss) is chosen, then the judge trains on every train row "
        "for that many epochs (fewer held-out validation rows than "
        f"training.cross_validation_below={hyperparameters.cross_validation_below} would be noise)"
        if validation["folds"]
        else f"{validation['method']}: the best epoch (macro-F1, then log-loss) is kept, training "
        f"stops after {hyperparameters.early_stopping_patience} epoch(s) without gain"
    )
    calibration = training_metrics["calibration"]
    calibration_line = (
        f"Temperature scaling **applied**: T = {calibration['temperature']:.3f}, fitted on the "
        f"{calibration['validation_rows']} validation rows (their log-loss "
        f"{calibration['validation_log_loss_before']:.3f} → {calibration['validation_log_loss_after']:.3f})."
        if calibration["applied"]
        else f"Temperature scaling **not applied**: {calibration['reason']}."
    )
    cost = training_metrics["cost"]
    llm_costs = "\n".join(
        f"| LLM judge {model} (list price, {cost['prompt_tokens_mean']:.0f} prompt + "
        f"{cost['llm_judge_output_tokens']} answer tokens) | ${usd:.4f} |"
        for model, usd in cost["llm_judge_usd_per_1000"].items()
    )
    judge_speed = (
        f"{cost['judge_seconds_per_1000']:.1f} s of {cost['device']} time "
        f"({cost['judge_rows_per_second']:.1f} rows/s on {cost['cpu_threads']} CPU threads"
        f"{_precision_said(cost['precision'])}, no API cost)"
        if cost["judge_rows_per_second"]
        else "not measured (no test rows)"
    )
    fallbacks = "\n".join(f"- {line}" for line in runtime["fallbacks"]) or "- none"
    launched = training_log.get("processes", [])
    processes = (
        f"\n- data-parallel over {len(launched)} processes ({launched[0]['backend']}; "
        f"{', '.join(sorted({p['device'] for p in launched}))}), per-device batch "
        f"{hyperparameters.per_device_train_batch_size} on each"
        if launched
        else ""
    )
    how = {
        GENERATE: "It answers "
        + (
            "`true` / `false`"
            if config.metric.type == "boolean"
            else ", ".join(f"`{i}` = {label}" for i, label in enumerate(training_metrics["labels"]))
        )
        + "; class probabilities come from one forward pass over the first token of each answer.",
        CLASSIFY: "A classification head over the classes reads its last token; one forward pass, "
        "softmax over the classes.",
        "encoder": f"An encoder ({config.model.encoder_name}) reads the row's feature columns "
        "without the template's wording (its input template is below); a linear classification "
        "head on its token states, mean-pooled over the attention mask; one forward pass, softmax "
        "over the classes.",
    }[head]
    weights = (
        f"the encoder **{config.model.encoder_name}**, every weight fine-tuned"
        if head == "encoder"
        else f"a LoRA adapter on **{config.model.name}**"
    )
    return f"""# {config.output.model_name or "judgeforge judge"}

A judge of a {config.metric.type} metric, head `{head}`: {weights}.
{how}

## Prompt template

```text
{config.prompt_template}
```
{_input_template_note(training_log["input_template"], config.prompt_template, training_log["system_prompt"])}
Rows longer than max_seq_length={hyperparameters.max_seq_length} are cut field by field
(`context` first, then each field to its share): {training_metrics["truncated_rows"]["train"]} train
and {training_metrics["truncated_rows"]["test"]} test rows were cut.

## Evaluation on the real test split ({training_metrics[FINE_TUNED]["n"]} rows)

| metric | {header} | fine-tuned judge | lift over each |
|---|{"---|" * len(compared)}---|---|
{rows}

{verdict}{skipped}

Per class (fine-tuned):

| class | precision | recall | F1 | support |
|---|---|---|---|---|
{per_class}

## Model selection (validation rows, never the test split)

{validation["rows"]} validation rows ({", ".join(f"{n} {source}" for source, n in validation["by_source"].items()) or "none"}), {selection_method}, head setting `{config.model.head}`.

| head | validation macro-F1 | log-loss | best epoch | macro-F1 per epoch | training s |
|---|---|---|---|---|---|
{candidates}

## Calibration

{calibration_line}
Expected calibration error on the test split: {calibration["test_ece"]:.3f} (before temperature scaling {calibration["test_ece_before_temperature"]:.3f}); the reliability diagram is the `reliability_diagram` dataset (by default `data/08_reporting/reliability_diagram.png`).

## Cost of 1,000 judgments

| judge | cost |
|---|---|
| this judge | {judge_speed} |
{llm_costs}

## Training

- examples: {summary["train_examples"]}, optimizer steps: {summary["optimizer_steps"]}, epochs run: {summary["epochs_run"]:g}, final loss: {summary["final_train_loss"]:.4f}
- epochs {hyperparameters.num_train_epochs}, batch {hyperparameters.per_device_train_batch_size} × {hyperparameters.gradient_accumulation_steps} accumulation, learning rate {config.model.encoder_learning_rate if head == "encoder" else hyperparameters.learning_rate:g} ({runtime["lr_scheduler_type"]}, {hyperparameters.warmup_steps} warmup steps), max length {hyperparameters.max_seq_length}
- LoRA r={config.model.lora_r}, alpha={config.model.lora_alpha} (heads generate and classify); device {runtime["device"]}, optimizer {runtime["optim"]}, bf16={runtime["bf16"]}, fp16={runtime["fp16"]}
- throughput: {summary["train_tokens_per_second"] or 0:.0f} tokens/s over {summary["train_runtime_s"]:.1f} s{processes}

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
