"""UMAP in both modes, reproducibly."""

from __future__ import annotations

import numpy as np
import pytest

from judgeforge.diagnostics.projection import project
from tests.diagnostics.fakes import cluster


@pytest.fixture(scope="module")
def vectors() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    holdout = cluster(rng, np.eye(12)[0], 40, spread=0.3).astype(np.float32)
    synthetic = cluster(rng, np.eye(12)[1], 15, spread=0.3).astype(np.float32)
    return synthetic, holdout


@pytest.mark.parametrize("mode", ["joint", "holdout_anchor"])
def test_both_modes_place_every_row_and_the_same_seed_gives_the_same_map(mode: str, vectors) -> None:
    synthetic, holdout = vectors
    first = project(synthetic, holdout, mode, neighbours=10, min_dist=0.1, seed=7)
    again = project(synthetic, holdout, mode, neighbours=10, min_dist=0.1, seed=7)
    assert first.synthetic.shape == (15, 2) and first.holdout.shape == (40, 2)
    assert first.neighbours_used == 10
    np.testing.assert_array_equal(first.synthetic, again.synthetic)
    np.testing.assert_array_equal(first.holdout, again.holdout)


def test_anchor_mode_fits_on_the_holdout_only(vectors) -> None:
    synthetic, holdout = vectors
    anchored = project(synthetic, holdout, "holdout_anchor", neighbours=10, min_dist=0.1, seed=7)
    without_synthetic = project(synthetic[:0], holdout, "holdout_anchor", neighbours=10, min_dist=0.1, seed=7)
    np.testing.assert_array_equal(anchored.holdout, without_synthetic.holdout)


def test_neighbours_are_clamped_and_tiny_inputs_refused(vectors) -> None:
    synthetic, holdout = vectors
    assert project(synthetic, holdout[:6], "holdout_anchor", neighbours=15, min_dist=0.1, seed=1).neighbours_used == 5
    with pytest.raises(ValueError, match="at least 5 rows"):
        project(synthetic, holdout[:3], "holdout_anchor", neighbours=15, min_dist=0.1, seed=1)
