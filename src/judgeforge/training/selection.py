"""Model selection on real rows: the validation split, per-epoch scores, early stopping, the best head."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from transformers import TrainerCallback

from judgeforge.schema import SEED_SOURCE, SOURCE
from judgeforge.training.calibration import negative_log_likelihood
from judgeforge.training.distributed import gathered_logits

logger = logging.getLogger(__name__)

# The fold of each validation row under k-fold selection.
FOLD = "validation_fold"
# A smaller drop in validation log-loss at equal macro-F1 is float noise, not a better epoch.
MIN_LOG_LOSS_GAIN = 1e-4


def validation_split(
    examples: pd.DataFrame,
    label_column: str,
    fraction: float,
    seed: int,
    cross_validation_below: int = 0,
    folds: int = 2,
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Return (rows to train on, validation rows, where validation came from).

    Validation is `fraction` of the real seed rows (stratified by label when every class has two
    or more), or of all train rows when the split has no seed rows; always at least one row, and
    none when that would leave nothing to train on. When that share would be fewer than
    `cross_validation_below` rows, every row of the pool is a validation row instead, its fold of a
    `folds`-fold split in column FOLD, and the rows to train on are all rows (each fold's model
    trains on the rows outside its fold).
    """
    seeds = examples[examples[SOURCE] == SEED_SOURCE] if SOURCE in examples else examples.iloc[:0]
    pool, origin = (
        (seeds, "real seed rows") if len(seeds) else (examples, "train rows (no real seed rows)")
    )
    size = min(max(1, round(fraction * len(pool))), len(pool) - 1)
    if size < cross_validation_below and len(pool) >= folds:
        return (
            examples,
            pool.assign(**{FOLD: fold_numbers(pool[label_column], folds, seed)}),
            f"{folds}-fold cross-validation over {len(pool)} {origin}",
        )
    if len(pool) < 2 or size >= len(examples):
        return examples, examples.iloc[:0], "none: too few rows to hold any out"
    classes = pool[label_column].value_counts()
    # scikit-learn stratifies only when both parts can hold every class.
    can_stratify = classes.min() >= 2 and len(classes) <= size <= len(pool) - len(classes)
    stratify = pool[label_column] if can_stratify else None
    _, validation = train_test_split(pool, test_size=size, random_state=seed, stratify=stratify)
    return examples.drop(index=validation.index), validation, origin


def fold_numbers(labels: pd.Series, folds: int, seed: int) -> np.ndarray:
    """Return each row's fold, 0 to folds - 1: stratified by label when every class has `folds` rows."""
    splitter = (
        StratifiedKFold(folds, shuffle=True, random_state=seed)
        if labels.value_counts().min() >= folds
        else KFold(folds, shuffle=True, random_state=seed)
    )
    numbers = np.zeros(len(labels), dtype=int)
    for number, (_, held_out) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        numbers[held_out] = number
    return numbers


def validation_scores(logits: np.ndarray, truth: np.ndarray, n_classes: int) -> dict[str, float]:
    """Return macro-F1, accuracy and log-loss of class logits against true class indices."""
    predicted = logits.argmax(axis=1)
    return {
        "macro_f1": float(
            f1_score(
                truth, predicted, labels=list(range(n_classes)), average="macro", zero_division=0
            )
        ),
        "accuracy": float((predicted == truth).mean()),
        "log_loss": negative_log_likelihood(logits, truth),
    }


def better(scores: dict[str, float], than: dict[str, float] | None) -> bool:
    """Return whether scores beat `than`: higher macro-F1, then a log-loss lower by a real margin."""
    if than is None or scores["macro_f1"] != than["macro_f1"]:
        return than is None or scores["macro_f1"] > than["macro_f1"]
    return scores["log_loss"] < than["log_loss"] - MIN_LOG_LOSS_GAIN


class BestEpoch(TrainerCallback):
    """Scores the validation rows after each epoch, keeps the best epoch's trainable weights, stops early."""

    def __init__(self, judge: Any, prompts: Sequence[str], truth: np.ndarray, patience: int):
        self.judge = judge
        self.prompts = list(prompts)
        self.truth = truth
        self.patience = patience
        self.epochs: list[dict[str, float]] = []
        self.epoch_logits: list[np.ndarray] = []
        self.best: dict[str, float] | None = None
        self._best_weights: dict[str, Any] = {}
        self._epochs_without_gain = 0

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        """Score this epoch; keep its weights when best; stop after `patience` epochs without gain.

        Under a launch every process scores its share and all act on the same gathered logits.
        """
        logits = gathered_logits(self.judge.logits, self.prompts)
        scores = {
            "epoch": round(state.epoch),
            **validation_scores(logits, self.truth, len(self.judge.labels)),
        }
        self.epochs.append(scores)
        self.epoch_logits.append(logits)
        logger.info(
            "%s head, epoch %d: validation macro-F1 %.3f, log-loss %.3f",
            self.judge.head,
            scores["epoch"],
            scores["macro_f1"],
            scores["log_loss"],
        )
        if better(scores, self.best):
            self.best = scores
            self._best_weights = {
                name: parameter.detach().clone()
                for name, parameter in self.judge.model.named_parameters()
                if parameter.requires_grad
            }
            self._epochs_without_gain = 0
        else:
            self._epochs_without_gain += 1
            if self._epochs_without_gain >= self.patience:
                control.should_training_stop = True
        return control

    def restore_best(self) -> None:
        """Put the best epoch's weights back into the model."""
        if self._best_weights:
            self.judge.model.load_state_dict(self._best_weights, strict=False)


class StopAtEpoch(TrainerCallback):
    """Ends training after a given epoch, the learning-rate schedule left as configured."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        """Stop once `epoch` epochs have run."""
        if round(state.epoch) >= self.epoch:
            control.should_training_stop = True
        return control
