"""Deterministic stand-ins for the embedding client, so tests control the geometry."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


class TableEmbedder:
    """Embeds each text as the vector it is mapped to, and records every call."""

    def __init__(self, vectors: Mapping[str, np.ndarray]) -> None:
        self.vectors = dict(vectors)
        self.calls: list[list[str]] = []

    async def embed(self, texts: list[str]) -> np.ndarray:
        """Return the mapped vectors, row i for texts[i]."""
        self.calls.append(list(texts))
        return np.stack([self.vectors[text] for text in texts]).astype(np.float32)


def unit(vectors: np.ndarray) -> np.ndarray:
    """Return the rows scaled to unit length."""
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def cluster(rng: np.random.Generator, centre: np.ndarray, rows: int, spread: float) -> np.ndarray:
    """Return unit vectors scattered around a centre direction."""
    return unit(centre + spread * rng.standard_normal((rows, len(centre))))
