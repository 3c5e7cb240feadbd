"""2-d UMAP maps of synthetic and holdout embeddings, fitted jointly or on the holdout alone."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

# UMAP's spectral initialisation needs a few more rows than output dimensions.
MIN_FIT_ROWS = 5


@dataclass(frozen=True)
class Projection:
    """2-d coordinates of the synthetic and holdout rows, and the neighbour count UMAP used."""

    synthetic: np.ndarray  # (synthetic rows, 2)
    holdout: np.ndarray  # (holdout rows, 2)
    neighbours_used: int


def fit_rows(mode: str, synthetic_rows: int, holdout_rows: int) -> int:
    """Return how many rows the UMAP model is fitted on in `mode`."""
    return synthetic_rows + holdout_rows if mode == "joint" else holdout_rows


def project(
    synthetic: np.ndarray, holdout: np.ndarray, mode: str, neighbours: int, min_dist: float, seed: int
) -> Projection:
    """Return UMAP coordinates: `joint` fits on all rows, `holdout_anchor` fits on the holdout and places synthetic rows into it."""
    import umap  # slow to import (numba); only needed when UMAP is on

    fitted_on = np.concatenate([synthetic, holdout]) if mode == "joint" else holdout
    if len(fitted_on) < MIN_FIT_ROWS:
        raise ValueError(f"UMAP needs at least {MIN_FIT_ROWS} rows to fit on, got {len(fitted_on)}")
    neighbours_used = min(neighbours, len(fitted_on) - 1)
    # random_state makes UMAP single-threaded and reproducible; n_jobs=1 says so and silences its warning.
    model = umap.UMAP(
        n_neighbors=neighbours_used, min_dist=min_dist, metric="cosine", random_state=seed, n_jobs=1
    )
    with warnings.catch_warnings():
        # Small inputs make UMAP fall back from its sparse eigen-solver, which it reports as a warning.
        warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"umap\.")
        coordinates = model.fit_transform(fitted_on).astype(np.float32)
        if mode == "joint":
            return Projection(coordinates[: len(synthetic)], coordinates[len(synthetic) :], neighbours_used)
        placed = model.transform(synthetic).astype(np.float32) if len(synthetic) else np.zeros((0, 2), np.float32)
    return Projection(placed, coordinates, neighbours_used)
