"""Fidelity and diversity of synthetic rows against real ones in embedding space, and realised plan shares.

Precision and recall (Kynkäänniemi et al. 2019, "Improved precision and recall metric for
assessing generative models") and density and coverage (Naeem et al. 2020, "Reliable fidelity
and diversity metrics for generative models") from k-nearest-neighbour balls: every point's
radius is the distance to its k-th nearest neighbour in its own set (FAISS, exact L2).

- precision: share of synthetic rows inside some real row's ball (they look real);
- recall: share of real rows inside some synthetic row's ball (the real variety is reached);
- density: mean number of real balls holding a synthetic row, over k (can exceed 1);
- coverage: share of real rows whose ball holds at least one synthetic row.
"""

from __future__ import annotations

from collections.abc import Mapping

import faiss
import numpy as np

# Naeem et al. 2020 recommend k = 5 for density and coverage.
PRDC_NEIGHBOURS = 5
# Rows of synthetic points compared with every real point at a time (bounds memory).
CHUNK = 2048


def kth_neighbour_radii(points: np.ndarray, k: int) -> np.ndarray:
    """Return each point's squared L2 distance to its k-th nearest other point of the same set."""
    index = faiss.IndexFlatL2(points.shape[1])
    index.add(points)
    distances, _ = index.search(points, k + 1)  # the nearest is the point itself
    return distances[:, k]


def prdc(
    real: np.ndarray, synthetic: np.ndarray, k: int = PRDC_NEIGHBOURS
) -> dict[str, float | None]:
    """Return precision, recall, density and coverage of `synthetic` against `real` (None when a set has ≤ k rows)."""
    names = ("precision", "recall", "density", "coverage")
    if len(real) <= k or len(synthetic) <= k:
        return dict.fromkeys(names)
    real, synthetic = (np.ascontiguousarray(m, dtype=np.float32) for m in (real, synthetic))
    real_radii, synthetic_radii = kth_neighbour_radii(real, k), kth_neighbour_radii(synthetic, k)
    inside_real = np.zeros(
        len(synthetic), dtype=np.int64
    )  # per synthetic row: real balls holding it
    real_reached = np.zeros(len(real), dtype=bool)  # per real row: inside some synthetic ball
    real_covered = np.zeros(len(real), dtype=bool)  # per real row: its ball holds a synthetic row
    real_norms = (real**2).sum(axis=1)
    for start in range(0, len(synthetic), CHUNK):
        chunk = synthetic[start : start + CHUNK]
        # squared distances, synthetic × real
        distances = (chunk**2).sum(axis=1)[:, None] + real_norms[None, :] - 2 * chunk @ real.T
        within_real = distances <= real_radii[None, :]
        inside_real[start : start + len(chunk)] = within_real.sum(axis=1)
        real_covered |= within_real.any(axis=0)
        real_reached |= (distances <= synthetic_radii[start : start + len(chunk), None]).any(axis=0)
    return {
        "precision": float((inside_real > 0).mean()),
        "recall": float(real_reached.mean()),
        "density": float(inside_real.sum() / (k * len(synthetic))),
        "coverage": float(real_covered.mean()),
    }


def share_gaps(
    requested: Mapping[str, float], realised: Mapping[str, float]
) -> dict[str, dict[str, float]]:
    """Return, per value, the requested share, the realised share and their difference."""
    return {
        value: {
            "requested": round(share, 4),
            "realised": round(realised.get(value, 0.0), 4),
            "difference": round(realised.get(value, 0.0) - share, 4),
        }
        for value, share in requested.items()
    }
