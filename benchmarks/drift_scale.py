"""Drift scoring at scale: 1,000,000 synthetic vs 100,000 holdout 384-d unit vectors.

Runs the same functions as the diagnostics pipeline (judgeforge.diagnostics.drift) on random
vectors and prints wall time per step, peak RSS and the IVF index's recall@k against exact search
on a sample of queries. `--clustered` draws vectors around 2,000 centres instead, which
is closer to real sentence embeddings (isotropic random vectors have no neighbourhoods to find).

    .venv/bin/python benchmarks/drift_scale.py [--synthetic 1000000] [--holdout 100000] [--k 30] [--clustered]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

import faiss
import numpy as np

from judgeforge.diagnostics import drift

GENERATION_CHUNK_ROWS = 100_000
CLUSTER_COUNT = 2_000
CLUSTER_NOISE_NORM = 0.6


def unit_vectors(rng: np.random.Generator, rows: int, dimension: int, centres: np.ndarray | None) -> np.ndarray:
    """Return `rows` random unit vectors (around random centres when given), built in chunks to bound memory."""
    vectors = np.empty((rows, dimension), dtype=np.float32)
    for start in range(0, rows, GENERATION_CHUNK_ROWS):
        chunk = vectors[start : start + GENERATION_CHUNK_ROWS]
        rng.standard_normal(out=chunk, dtype=np.float32)
        if centres is not None:
            # Noise of norm ~0.6 around a unit centre: cosine ~0.85 to the centre, like a topic cluster.
            chunk *= CLUSTER_NOISE_NORM / np.sqrt(dimension)
            chunk += centres[rng.integers(len(centres), size=len(chunk))]
        faiss.normalize_L2(chunk)
    return vectors


def cpu_seconds() -> float:
    """Return the user + system CPU time this process has used (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_gib() -> float:
    """Return this process's peak resident memory in GiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=int, default=1_000_000)
    parser.add_argument("--holdout", type=int, default=100_000)
    parser.add_argument("--dimension", type=int, default=384)
    parser.add_argument("--k", type=int, default=30)
    parser.add_argument("--threshold", type=float, default=0.95)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clustered", action="store_true", help=f"vectors around {CLUSTER_COUNT:,} random centres")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    load_at_start = os.getloadavg()[0]
    centres = unit_vectors(rng, CLUSTER_COUNT, args.dimension, None) if args.clustered else None

    timings: dict[str, float] = {}
    started = time.perf_counter()
    holdout = unit_vectors(rng, args.holdout, args.dimension, centres)
    synthetic = unit_vectors(rng, args.synthetic, args.dimension, centres)
    timings["generate_vectors_s"] = time.perf_counter() - started
    rss_after_generation = peak_rss_gib()

    def timed(step: str, work):
        began = time.perf_counter()
        result = work()
        timings[step] = time.perf_counter() - began
        return result

    scoring_started, scoring_cpu_started = time.perf_counter(), cpu_seconds()
    index = timed("build_index_s", lambda: drift.build_index(holdout, args.seed))
    reference = timed("holdout_leave_one_out_s", lambda: drift.leave_one_out(index, holdout, args.k).scores)
    found = timed("search_synthetic_s", lambda: drift.search(index, holdout, synthetic, args.k))
    cut = drift.threshold_score(reference, args.threshold)
    scores = found.scores
    flagged = timed("flag_s", lambda: scores > cut)
    percentiles = drift.reference_percentiles(scores, reference)
    timings["drift_scoring_total_s"] = time.perf_counter() - scoring_started
    # Other users of a shared machine stretch wall time; CPU time / threads is what a quiet machine would take.
    timings["drift_scoring_cpu_s"] = cpu_seconds() - scoring_cpu_started
    quality = timed("recall_vs_exact_s", lambda: drift.search_quality(index, holdout, synthetic, found, args.seed))

    report = {
        "synthetic_rows": args.synthetic,
        "holdout_rows": args.holdout,
        "dimension": args.dimension,
        "k": args.k,
        "threads": args.threads,
        "load_average_1min_at_start": round(load_at_start, 2),
        "vectors": "clustered" if args.clustered else "isotropic random",
        "index": drift.describe_index(index, args.k),
        **{name: round(seconds, 2) for name, seconds in timings.items()},
        "peak_rss_gib_after_generation": round(rss_after_generation, 2),
        "peak_rss_gib": round(peak_rss_gib(), 2),
        "recall_at_k_vs_exact": round(quality.recall_at_k, 4),
        "mean_abs_score_error_vs_exact": round(quality.mean_abs_score_error, 5),
        "recall_sample_rows": quality.sample_rows,
        "mean_score": round(float(scores.mean()), 4),
        "threshold_score": round(cut, 4),
        "flagged_share": round(float(flagged.mean()), 4),
        "median_percentile": round(float(np.median(percentiles)), 4),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
