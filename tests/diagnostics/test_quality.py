"""Summary statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd

from judgeforge.diagnostics import quality
from tests.diagnostics.fakes import unit


def test_mean_pairwise_cosine_distance_matches_brute_force() -> None:
    vectors = unit(np.random.default_rng(0).standard_normal((30, 8))).astype(np.float32)
    similarities = vectors @ vectors.T
    brute = 1 - similarities[~np.eye(30, dtype=bool)].mean()
    assert abs(quality.mean_pairwise_cosine_distance(vectors) - brute) < 1e-6
    assert quality.mean_pairwise_cosine_distance(vectors[:1]) is None


def test_distinct_ngram_ratios() -> None:
    ratios = quality.distinct_ngram_ratios(pd.Series(["the cat sat", "The cat ran"]))
    assert ratios == {"distinct_1gram_ratio": 4 / 6, "distinct_2gram_ratio": 3 / 4}
    assert quality.distinct_ngram_ratios(pd.Series(["one"]))["distinct_2gram_ratio"] is None


def test_class_balance_and_quantiles() -> None:
    assert quality.class_balance(pd.Series(["a", "b", "a", "a"])) == {
        "a": {"count": 3, "share": 0.75},
        "b": {"count": 1, "share": 0.25},
    }
    summary = quality.quantile_summary(np.array([1.0, 2.0, 3.0]))
    assert (summary["count"], summary["p0"], summary["p50"], summary["p100"]) == (3, 1.0, 2.0, 3.0)
    assert quality.quantile_summary(np.array([])) == {"count": 0}
    assert quality.text_lengths(pd.Series(["ab cd", "e"]))["words"]["p100"] == 2.0


def test_input_notes_name_empty_splits_and_a_one_class_holdout() -> None:
    table = pd.DataFrame({"split": ["holdout", "holdout"], "label": ["1", "1"]})
    notes = quality.input_notes(table, "split", "label", ("synthetic", "holdout"))
    assert notes == [
        "the synthetic set is empty: nothing to compare it with",
        "the holdout has a single class (1): per-class comparisons with the synthetic set cover that class only",
    ]
