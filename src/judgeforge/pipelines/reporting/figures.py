"""Figures of the report, built as bare matplotlib Figures and inlined as PNG data URIs."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

RELIABILITY_BINS = 10
DPI = 96


def data_uri(figure: Figure) -> str:
    """Return the figure as a `data:image/png;base64,...` URI (so the report needs no other file)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def grouped_bars(
    groups: Sequence[str],
    series: Mapping[str, Sequence[float]],
    ylabel: str,
    title: str,
    value_format: str = "{:.2f}",
) -> Figure:
    """Return bars of several series side by side per group, each bar labelled with its value."""
    figure = Figure(
        figsize=(max(5.5, 1.2 * len(groups) * max(1, len(series)) + 2), 3.6), layout="constrained"
    )
    axes = figure.add_subplot()
    positions = np.arange(len(groups))
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        bars = axes.bar(positions + (i - (len(series) - 1) / 2) * width, values, width, label=name)
        axes.bar_label(bars, labels=[value_format.format(v) for v in values], fontsize="small")
    axes.set_xticks(positions, list(groups))
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.margins(y=0.15)
    axes.legend(fontsize="small")
    return figure


def reliability_bins(
    confidence: np.ndarray, correct: np.ndarray, bins: int = RELIABILITY_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Return (mean confidence, accuracy, rows) per non-empty confidence bin, and the expected calibration error."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    used = [b for b in range(bins) if (which == b).any()]
    mean_confidence = np.array([confidence[which == b].mean() for b in used])
    accuracy = np.array([correct[which == b].mean() for b in used])
    rows = np.array([(which == b).sum() for b in used])
    error = float(np.sum(rows * np.abs(accuracy - mean_confidence)) / max(1, len(confidence)))
    return mean_confidence, accuracy, rows, error


def reliability_diagram(curves: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> Figure:
    """Return accuracy against confidence (the predicted class's probability) per model, with the diagonal."""
    figure = Figure(figsize=(5.5, 4.6), layout="constrained")
    axes = figure.add_subplot()
    axes.plot(
        [0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated"
    )
    for name, (confidence, correct) in curves.items():
        mean_confidence, accuracy, rows, error = reliability_bins(confidence, correct)
        axes.plot(mean_confidence, accuracy, marker="o", label=f"{name} (ECE {error:.3f})")
        for x, y, n in zip(mean_confidence, accuracy, rows):
            axes.annotate(
                str(n), (x, y), textcoords="offset points", xytext=(4, -10), fontsize="x-small"
            )
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.05)
    axes.set_xlabel("confidence (probability of the predicted class)")
    axes.set_ylabel("accuracy")
    axes.set_title("Reliability on the real test rows (numbers: rows per bin)")
    axes.legend(fontsize="small", loc="upper left")
    return figure
