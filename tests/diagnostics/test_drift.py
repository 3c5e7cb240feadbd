"""k-NN drift scoring: geometry, threshold semantics, leave-one-out, the IVF path."""

from __future__ import annotations

import numpy as np
import pytest

from judgeforge.diagnostics import drift
from tests.diagnostics.fakes import cluster, unit

DIMENSION = 16


def _axis(position: int) -> np.ndarray:
    vector = np.zeros(DIMENSION)
    vector[position] = 1.0
    return vector


def _scores_and_reference(holdout: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    index = drift.build_index(holdout, seed=0)
    return drift.search(index, holdout, queries, k).scores, drift.leave_one_out(index, holdout, k).scores


def test_rows_far_from_the_holdout_are_flagged_and_rows_inside_are_not() -> None:
    rng = np.random.default_rng(0)
    holdout = cluster(rng, _axis(0), 200, spread=0.2).astype(np.float32)
    inside = cluster(rng, _axis(0), 30, spread=0.05).astype(np.float32)
    far = cluster(rng, _axis(1), 10, spread=0.2).astype(np.float32)
    scores, reference = _scores_and_reference(holdout, np.vstack([inside, far]), k=10)
    flagged = scores > drift.threshold_score(reference, 0.95)
    assert not flagged[:30].any()
    assert flagged[30:].all()
    assert (drift.reference_percentiles(scores[30:], reference) == 1.0).all()


def test_score_is_the_mean_cosine_distance_to_the_k_nearest_holdout_rows() -> None:
    holdout = unit(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], dtype=np.float32))
    query = np.array([[1, 0, 0]], dtype=np.float32)
    found = drift.search(drift.build_index(holdout, seed=0), holdout, query, 2)
    assert found.positions.tolist() == [[0, 3]]
    np.testing.assert_allclose(found.scores, [(0.0 + (1 - np.sqrt(0.5))) / 2], atol=1e-6)


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [(0.0, [False, True, True, True]), (0.5, [False, False, True, True]), (1.0, [False, False, False, True])],
)
def test_threshold_is_a_quantile_of_the_reference_and_ties_are_not_flagged(threshold: float, expected: list[bool]) -> None:
    reference = np.array([0.1, 0.2, 0.3], dtype=np.float32)
    # The smallest reference score, the median, the largest, and one beyond all of them.
    scores = np.array([0.1, 0.2, 0.3, 0.31], dtype=np.float32)
    assert (scores > drift.threshold_score(reference, threshold)).tolist() == expected


def test_a_reference_of_ties_flags_only_rows_beyond_it() -> None:
    reference = np.full(5, 0.25, dtype=np.float32)
    scores = np.array([0.25, 0.2500001, 0.2], dtype=np.float32)
    for threshold in (0.0, 0.95, 1.0):
        assert (scores > drift.threshold_score(reference, threshold)).tolist() == [False, True, False]
    assert drift.reference_percentiles(scores, reference).tolist() == [1.0, 1.0, 0.0]


def test_leave_one_out_skips_the_row_itself_even_when_it_has_an_identical_twin() -> None:
    holdout = unit(np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32))
    found = drift.leave_one_out(drift.build_index(holdout, seed=0), holdout, 1)
    positions = found.positions[:, 0].tolist()
    assert positions[0] == 1 and positions[1] == 0
    assert all(position != row for row, position in enumerate(positions))
    np.testing.assert_allclose(found.distances[:2, 0], 0.0, atol=1e-6)


def test_large_holdouts_get_an_ivf_index_whose_recall_is_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drift, "EXACT_SEARCH_MAX_ROWS", 500)
    rng = np.random.default_rng(1)
    centres = unit(rng.standard_normal((20, DIMENSION)))
    holdout = np.vstack([cluster(rng, centre, 100, spread=0.1) for centre in centres]).astype(np.float32)
    queries = np.vstack([cluster(rng, centre, 20, spread=0.1) for centre in centres]).astype(np.float32)
    index = drift.build_index(holdout, seed=0)
    assert drift.is_approximate(index)
    description = drift.describe_index(index, 10)
    assert description["kind"] == "ivf" and description["lists"] == drift.ivf_list_count(len(holdout))
    found = drift.search(index, holdout, queries, 10)
    assert (found.positions >= 0).all()
    measured = drift.search_quality(index, holdout, queries, found, seed=0)
    assert measured.sample_rows == len(queries)
    assert measured.recall_at_k > 0.9
    assert measured.mean_abs_score_error < 0.01


def test_queries_an_ivf_probe_leaves_short_are_searched_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drift, "EXACT_SEARCH_MAX_ROWS", 10)
    monkeypatch.setattr(drift, "IVF_MIN_NPROBE", 1)
    monkeypatch.setattr(drift, "IVF_CANDIDATES_PER_NEIGHBOUR", 0)
    rng = np.random.default_rng(2)
    holdout = unit(rng.standard_normal((400, DIMENSION))).astype(np.float32)
    index = drift.build_index(holdout, seed=0)
    # One probed list of ~5 rows cannot hold 50 neighbours: FAISS pads with -1, search must not.
    found = drift.search(index, holdout, holdout[:5], 50)
    exact = drift.exact_search(holdout, holdout[:5], 50)
    np.testing.assert_allclose(found.scores, exact.scores, atol=1e-6)


def test_an_exact_index_has_perfect_recall() -> None:
    rng = np.random.default_rng(3)
    holdout = unit(rng.standard_normal((50, DIMENSION))).astype(np.float32)
    queries = unit(rng.standard_normal((20, DIMENSION))).astype(np.float32)
    index = drift.build_index(holdout, seed=0)
    measured = drift.search_quality(index, holdout, queries, drift.search(index, holdout, queries, 5), seed=0)
    assert measured.recall_at_k == 1.0 and measured.mean_abs_score_error == 0.0
