"""Classification metrics of judge predictions and their confusion matrices."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)


def classification_metrics(
    truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]
) -> dict[str, Any]:
    """Return accuracy, macro and weighted F1, per-class precision/recall/F1/support and the confusion matrix."""
    labels = list(labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0
    )
    return {
        "n": len(truth),
        "accuracy": float(accuracy_score(truth, predicted)) if len(truth) else 0.0,
        "macro_f1": float(
            f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)
        ),
        "weighted_f1": float(
            f1_score(truth, predicted, labels=labels, average="weighted", zero_division=0)
        ),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": {
            "labels": labels,
            "rows_true_columns_predicted": confusion_matrix(
                truth, predicted, labels=labels
            ).tolist(),
        },
    }


def confusion_matrices_figure(metrics_by_model: Mapping[str, Mapping[str, Any]]) -> Figure:
    """Return one confusion-matrix panel per model, side by side, counts written in the cells."""
    figure = Figure(figsize=(4.5 * len(metrics_by_model), 4.2), layout="constrained")
    axes = figure.subplots(1, len(metrics_by_model), squeeze=False)[0]
    for axis, (name, metrics) in zip(axes, metrics_by_model.items()):
        labels = metrics["confusion_matrix"]["labels"]
        counts = np.array(metrics["confusion_matrix"]["rows_true_columns_predicted"])
        axis.imshow(counts, cmap="Blues", vmin=0)
        axis.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        axis.set_yticks(range(len(labels)), labels)
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        axis.set_title(
            f"{name}\naccuracy {metrics['accuracy']:.2f} · macro F1 {metrics['macro_f1']:.2f}"
        )
        threshold = counts.max() / 2 if counts.size else 0
        for (row, column), count in np.ndenumerate(counts):
            axis.text(
                column,
                row,
                str(count),
                ha="center",
                va="center",
                color="white" if count > threshold else "black",
            )
    return figure
