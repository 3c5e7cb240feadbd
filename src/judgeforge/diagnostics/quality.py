"""Plain statistics for the diagnostics summary: quantiles, class balance, text lengths, diversity."""

from __future__ import annotations

import numpy as np
import pandas as pd

QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
NGRAM_SIZES = (1, 2)


def quantile_summary(values: np.ndarray | pd.Series) -> dict[str, float]:
    """Return count, mean and the QUANTILES of the values (only the count when there are none)."""
    numbers = np.asarray(values, dtype=np.float64)
    if numbers.size == 0:
        return {"count": 0}
    points = np.quantile(numbers, QUANTILES)
    return {
        "count": int(numbers.size),
        "mean": float(numbers.mean()),
        **{f"p{round(q * 100)}": float(value) for q, value in zip(QUANTILES, points)},
    }


def class_balance(labels: pd.Series) -> dict[str, dict[str, float]]:
    """Return the count and share of each label, most frequent first."""
    counts = labels.value_counts(dropna=False)
    total = int(counts.sum())
    return {str(label): {"count": int(count), "share": count / total} for label, count in counts.items()}


def text_lengths(texts: pd.Series) -> dict[str, dict[str, float]]:
    """Return the distribution of characters and of whitespace-separated words per text."""
    as_text = texts.astype(str)
    return {
        "characters": quantile_summary(as_text.str.len().to_numpy()),
        "words": quantile_summary(as_text.str.split().str.len().to_numpy()),
    }


def mean_pairwise_cosine_distance(unit_vectors: np.ndarray) -> float | None:
    """Return the mean cosine distance over all pairs of distinct rows (None for fewer than 2 rows)."""
    rows = len(unit_vectors)
    if rows < 2:
        return None
    # Σ_{i≠j} e_i·e_j = |Σ e_i|² − Σ |e_i|²: exact, in O(rows) instead of O(rows²).
    total = unit_vectors.sum(axis=0, dtype=np.float64)
    squared_norms = np.einsum("ij,ij->", unit_vectors, unit_vectors, dtype=np.float64)
    mean_similarity = (total @ total - squared_norms) / (rows * (rows - 1))
    return float(1.0 - mean_similarity)


def distinct_ngram_ratios(texts: pd.Series) -> dict[str, float | None]:
    """Return, per n in NGRAM_SIZES, distinct word n-grams over all word n-grams (lower-cased)."""
    token_lists = texts.astype(str).str.lower().str.split().tolist()
    ratios: dict[str, float | None] = {}
    for n in NGRAM_SIZES:
        ngrams = [tuple(tokens[i : i + n]) for tokens in token_lists for i in range(len(tokens) - n + 1)]
        ratios[f"distinct_{n}gram_ratio"] = len(set(ngrams)) / len(ngrams) if ngrams else None
    return ratios


def input_notes(table: pd.DataFrame, split_column: str, label_column: str | None, splits: tuple[str, str]) -> list[str]:
    """Return one sentence per input condition that limits the diagnostics (empty split, one-class holdout)."""
    synthetic_split, holdout_split = splits
    notes = []
    for split in splits:
        if not (table[split_column] == split).any():
            notes.append(f"the {split} set is empty: nothing to compare it with")
    if label_column:
        holdout_labels = table.loc[table[split_column] == holdout_split, label_column].dropna().unique()
        if len(holdout_labels) == 1:
            notes.append(
                f"the holdout has a single class ({holdout_labels[0]}): per-class comparisons "
                f"with the {synthetic_split} set cover that class only"
            )
    return notes
