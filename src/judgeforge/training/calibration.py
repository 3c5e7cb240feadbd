"""Calibrated class probabilities: temperature scaling, expected calibration error, reliability diagram."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

CALIBRATION_BINS = 10
# Temperatures searched: e^-3 (sharpen ×20) to e^3 (soften ×20).
LOG_TEMPERATURE_BOUNDS = (-3.0, 3.0)


def probabilities_at(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Return the softmax of `logits / temperature`, row by row."""
    return softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)


def negative_log_likelihood(
    logits: np.ndarray, truth: np.ndarray, temperature: float = 1.0
) -> float:
    """Return the mean negative log-likelihood of the true classes at a temperature."""
    log_probabilities = log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)
    return float(-log_probabilities[np.arange(len(truth)), truth].mean())


def fit_temperature(logits: np.ndarray, truth: np.ndarray) -> float:
    """Return the temperature that minimises the negative log-likelihood of the true classes."""
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(logits, truth, float(np.exp(log_t))),
        bounds=LOG_TEMPERATURE_BOUNDS,
        method="bounded",
    )
    return float(np.exp(result.x))


def expected_calibration_error(
    probabilities: np.ndarray, truth: np.ndarray, bins: int = CALIBRATION_BINS
) -> float:
    """Return the top-label ECE: |accuracy − confidence| per equal-width confidence bin, weighted by its rows."""
    # Hand-written: scikit-learn's calibration_curve is binary-only and returns no ECE.
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == truth
    bin_of = np.minimum((confidence * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        members = bin_of == b
        if members.any():
            error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)


def reliability_diagram(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]], bins: int = CALIBRATION_BINS
) -> Figure:
    """Return accuracy against confidence per bin, one line per (probabilities, truth) pair, with the ECE in the legend."""
    figure = Figure(figsize=(5, 4.5), layout="constrained")
    axis = figure.subplots()
    axis.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfectly calibrated")
    for name, (probabilities, truth) in curves.items():
        confidence = probabilities.max(axis=1)
        correct = probabilities.argmax(axis=1) == truth
        bin_of = np.minimum((confidence * bins).astype(int), bins - 1)
        filled = [b for b in range(bins) if (bin_of == b).any()]
        axis.plot(
            [confidence[bin_of == b].mean() for b in filled],
            [correct[bin_of == b].mean() for b in filled],
            marker="o",
            label=f"{name} (ECE {expected_calibration_error(probabilities, truth, bins):.3f})",
        )
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.set_xlabel("confidence (top-class probability)")
    axis.set_ylabel("accuracy")
    axis.set_title("Reliability on the test split")
    axis.legend(loc="upper left", fontsize="small")
    return figure
