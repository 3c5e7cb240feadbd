"""Texts to unit vectors through any client with `async embed(texts)`, in chunks, each distinct text once.

Caching by text hash lives in the client (`judgeforge.llm.LLMClient.embed` keys every text by
provider, model and text in its SQLite cache), so a re-run sends nothing it already embedded.
Embedding in chunks of EMBED_CHUNK_SIZE texts means the client commits each chunk to that cache
before the next one starts: an interrupted run keeps what it finished.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import pandas as pd

from judgeforge import progress
from judgeforge.llm.client import run_coroutine

# Large enough to keep the client's concurrent batches busy, small enough to lose little on a kill.
EMBED_CHUNK_SIZE = 2048


class TextEmbedder(Protocol):
    """Anything that turns texts into one vector per text (the `embedding_client` catalog entry)."""

    async def embed(self, texts: list[str]) -> np.ndarray: ...


def embed_texts(embedder: TextEmbedder, texts: Sequence[str]) -> np.ndarray:
    """Return one L2-normalised float32 row per text; equal texts are embedded once."""
    codes, distinct = pd.factorize(pd.Series(list(texts), dtype=object))
    if len(distinct) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    distinct_texts = [str(text) for text in distinct]
    vectors = run_coroutine(_embed_in_chunks(embedder, distinct_texts))
    return unit_rows(vectors)[codes]


async def _embed_in_chunks(embedder: TextEmbedder, texts: list[str]) -> np.ndarray:
    """Return the vectors of `texts`, asking the embedder for EMBED_CHUNK_SIZE texts at a time."""
    chunks = []
    with progress.stage("embedding", len(texts), unit="texts") as embedding:
        for start in range(0, len(texts), EMBED_CHUNK_SIZE):
            chunk = texts[start : start + EMBED_CHUNK_SIZE]
            vectors = np.asarray(await embedder.embed(chunk), dtype=np.float32)
            if vectors.ndim != 2 or vectors.shape[0] != len(chunk):
                raise ValueError(f"the embedding client returned an array of shape {vectors.shape} for {len(chunk)} texts")
            chunks.append(vectors)
            embedding.advance(len(chunk))
    return np.concatenate(chunks)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Return the rows scaled to unit length as contiguous float32 (all-zero rows stay zero)."""
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)

