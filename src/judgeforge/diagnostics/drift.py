"""k-NN drift of synthetic rows against the real holdout, with FAISS.

Distances are cosine distances (1 - cosine similarity) between unit vectors, searched as inner
products. A row's score is its mean distance to its k nearest holdout rows. The reference is the
same score for each holdout row against the other holdout rows (leave-one-out), so a synthetic
row is judged against how far real rows usually sit from each other. A row is flagged when its
score is strictly above the `threshold` quantile of the reference (numpy's linear interpolation):
threshold 0 flags anything farther than the closest real row, threshold 1 only rows farther than
every real row, and a score equal to the threshold score is not flagged.

Index choice: exact search (IndexFlatIP) up to EXACT_SEARCH_MAX_ROWS holdout rows; beyond it an
IVF index (IndexIVFFlat, about 4·√n lists, IVF_MIN_NPROBE or more lists probed). On 2 cores exact
search of 1e6 queries against 1e5 rows takes ~10 minutes; IVF takes about a tenth of that. Its
recall@k is measured against exact search on a sample of RECALL_SAMPLE_ROWS queries every run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import faiss
import numpy as np

EXACT_SEARCH_MAX_ROWS = 50_000
IVF_LISTS_PER_SQRT_ROW = 4
IVF_MIN_NPROBE = 16
# Probe enough lists to expect this many candidates per wanted neighbour.
IVF_CANDIDATES_PER_NEIGHBOUR = 4
RECALL_SAMPLE_ROWS = 1_000
# Queries per FAISS call: bounds the (rows × k) result buffers and FAISS's own scratch memory.
QUERY_CHUNK_ROWS = 16_384


@dataclass(frozen=True)
class Neighbours:
    """The k nearest indexed rows of each query, nearest first."""

    distances: np.ndarray  # (queries, k) float32 cosine distances
    positions: np.ndarray  # (queries, k) int64 row positions in the index

    @property
    def scores(self) -> np.ndarray:
        """Return each query's mean distance to its neighbours."""
        return self.distances.mean(axis=1, dtype=np.float64).astype(np.float32)


@dataclass(frozen=True)
class SearchQuality:
    """How close an approximate search came to exact search on a sample of queries."""

    recall_at_k: float
    mean_abs_score_error: float
    sample_rows: int


def build_index(vectors: np.ndarray, seed: int) -> faiss.Index:
    """Return an inner-product FAISS index of the rows: exact when small, IVF beyond EXACT_SEARCH_MAX_ROWS."""
    rows, dimension = vectors.shape
    if rows <= EXACT_SEARCH_MAX_ROWS:
        index = faiss.IndexFlatIP(dimension)
    else:
        lists = ivf_list_count(rows)
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dimension), dimension, lists, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed  # k-means initialisation, for reproducible lists
        index.train(vectors)
    index.add(vectors)
    return index


def ivf_list_count(rows: int) -> int:
    """Return the number of IVF lists for an index of `rows` rows."""
    return max(1, round(IVF_LISTS_PER_SQRT_ROW * math.sqrt(rows)))


def is_approximate(index: faiss.Index) -> bool:
    """Return whether the index searches approximately (IVF)."""
    return isinstance(index, faiss.IndexIVF)


def describe_index(index: faiss.Index, k: int) -> dict[str, object]:
    """Return the index kind and, for IVF, its list and probe counts."""
    if not is_approximate(index):
        return {"kind": "exact", "faiss_class": type(index).__name__, "rows": int(index.ntotal)}
    return {
        "kind": "ivf",
        "faiss_class": type(index).__name__,
        "rows": int(index.ntotal),
        "lists": int(index.nlist),
        "probes": probe_count(index, k),
    }


def probe_count(index: faiss.IndexIVF, k: int) -> int:
    """Return how many IVF lists to probe so that k neighbours are very likely among the candidates."""
    rows_per_list = max(1.0, index.ntotal / index.nlist)
    wanted = math.ceil(IVF_CANDIDATES_PER_NEIGHBOUR * k / rows_per_list)
    return min(index.nlist, max(IVF_MIN_NPROBE, wanted))


def search(index: faiss.Index, indexed: np.ndarray, queries: np.ndarray, k: int) -> Neighbours:
    """Return the k nearest indexed rows of each query; rows an IVF probe leaves short are searched exactly."""
    # Probes go in per-call parameters, so the caller's index object is left as it was.
    parameters = faiss.SearchParametersIVF(nprobe=probe_count(index, k)) if is_approximate(index) else None
    distances = np.empty((len(queries), k), dtype=np.float32)
    positions = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), QUERY_CHUNK_ROWS):
        stop = start + QUERY_CHUNK_ROWS
        similarities, positions[start:stop] = index.search(queries[start:stop], k, params=parameters)
        distances[start:stop] = 1.0 - similarities
    short = np.flatnonzero((positions < 0).any(axis=1))
    if len(short):
        exact = exact_search(indexed, queries[short], k)
        distances[short], positions[short] = exact.distances, exact.positions
    return Neighbours(distances, positions)


def exact_search(indexed: np.ndarray, queries: np.ndarray, k: int) -> Neighbours:
    """Return the exact k nearest indexed rows of each query."""
    flat = faiss.IndexFlatIP(indexed.shape[1])
    flat.add(indexed)
    return search(flat, indexed, queries, k)


def leave_one_out(index: faiss.Index, indexed: np.ndarray, k: int) -> Neighbours:
    """Return each indexed row's k nearest other indexed rows."""
    found = search(index, indexed, indexed, k + 1)
    rows = len(indexed)
    is_self = found.positions == np.arange(rows)[:, None]
    # An identical twin can outrank a row itself (or IVF can miss it): then drop the farthest instead.
    is_self[~is_self.any(axis=1), -1] = True
    others = ~is_self
    return Neighbours(found.distances[others].reshape(rows, k), found.positions[others].reshape(rows, k))


def search_quality(
    index: faiss.Index, indexed: np.ndarray, queries: np.ndarray, found: Neighbours, seed: int
) -> SearchQuality:
    """Return recall@k and score error of `found` against exact search, on a sample of the queries."""
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(queries), size=min(RECALL_SAMPLE_ROWS, len(queries)), replace=False))
    k = found.positions.shape[1]
    exact = exact_search(indexed, queries[sample], k)
    approximate = Neighbours(found.distances[sample], found.positions[sample])
    hits = (approximate.positions[:, :, None] == exact.positions[:, None, :]).any(axis=2).sum(axis=1)
    return SearchQuality(
        recall_at_k=float(hits.mean() / k),
        mean_abs_score_error=float(np.abs(approximate.scores - exact.scores).mean()),
        sample_rows=len(sample),
    )


def threshold_score(reference_scores: np.ndarray, threshold: float) -> float:
    """Return the `threshold` quantile of the reference scores (linear interpolation)."""
    return float(np.quantile(reference_scores.astype(np.float64), threshold))


def reference_percentiles(scores: np.ndarray, reference_scores: np.ndarray) -> np.ndarray:
    """Return, per score, the share of reference scores at or below it."""
    ordered = np.sort(reference_scores)
    return np.searchsorted(ordered, scores, side="right") / len(ordered)
