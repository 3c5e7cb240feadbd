"""Diagnostics figures, built as bare matplotlib Figures (no pyplot state, no GUI backend)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

SPLIT_COLOURS = {"synthetic": "tab:orange", "holdout": "tab:blue"}
LABEL_MARKERS = ("o", "^", "s", "D", "v", "P", "X", "*", "<", ">")
HISTOGRAM_BINS = 50


def message_figure(message: str) -> Figure:
    """Return a small figure that only says `message` (for disabled or empty diagnostics)."""
    figure = Figure(figsize=(6, 2))
    axes = figure.add_subplot()
    axes.axis("off")
    axes.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return figure


def umap_scatter(coordinates: pd.DataFrame, split_column: str, label_column: str | None, title: str) -> Figure:
    """Return a scatter of the x/y coordinates, coloured by split and marked by label."""
    figure = Figure(figsize=(8, 7), layout="constrained")
    axes = figure.add_subplot()
    labels = coordinates[label_column].astype(str) if label_column else pd.Series("all", index=coordinates.index)
    markers = dict(zip(sorted(labels.unique()), itertools.cycle(LABEL_MARKERS)))
    for (split, label), group in coordinates.groupby([coordinates[split_column], labels], sort=True):
        axes.scatter(
            group["x"], group["y"], s=12, alpha=0.6, c=SPLIT_COLOURS.get(split, "tab:gray"),
            marker=markers[label], label=f"{split} · {label}", linewidths=0,
        )
    axes.set_title(title)
    axes.set_xlabel("UMAP 1")
    axes.set_ylabel("UMAP 2")
    axes.legend(loc="best", fontsize="small", markerscale=1.5)
    return figure


def drift_histogram(scores: np.ndarray, reference_scores: np.ndarray, threshold_score: float, threshold: float) -> Figure:
    """Return overlaid histograms of synthetic and holdout (leave-one-out) scores, with the threshold line."""
    figure = Figure(figsize=(8, 5), layout="constrained")
    axes = figure.add_subplot()
    edges = np.histogram_bin_edges(np.concatenate([scores, reference_scores]), bins=HISTOGRAM_BINS)
    axes.hist(reference_scores, bins=edges, density=True, alpha=0.5, color=SPLIT_COLOURS["holdout"], label="holdout (leave-one-out)")
    axes.hist(scores, bins=edges, density=True, alpha=0.5, color=SPLIT_COLOURS["synthetic"], label="synthetic")
    axes.axvline(threshold_score, color="black", linestyle="--", label=f"threshold: p{threshold * 100:g} of holdout = {threshold_score:.3f}")
    axes.set_xlabel("mean cosine distance to the k nearest holdout rows")
    axes.set_ylabel("density")
    axes.set_title("k-NN drift scores")
    axes.legend()
    return figure


def drift_rate_by_class(rates: pd.DataFrame, overall_rate: float) -> Figure:
    """Return a bar chart of the flagged share per class (`rates`: label, rows, flagged_share)."""
    figure = Figure(figsize=(max(5, 0.8 * len(rates) + 3), 5), layout="constrained")
    axes = figure.add_subplot()
    bars = axes.bar(rates["label"].astype(str), rates["flagged_share"], color=SPLIT_COLOURS["synthetic"])
    axes.bar_label(bars, labels=[f"{share:.1%} of {rows}" for share, rows in zip(rates["flagged_share"], rates["rows"])])
    axes.axhline(overall_rate, color="black", linestyle="--", label=f"all synthetic rows: {overall_rate:.1%}")
    axes.set_ylim(0, max(1e-9, float(rates["flagged_share"].max()), overall_rate) * 1.2)
    axes.set_xlabel("label")
    axes.set_ylabel("share of synthetic rows flagged")
    axes.set_title("Drift rate by class")
    axes.legend()
    return figure
