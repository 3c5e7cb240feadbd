"""Diagnostics nodes: embed synthetic and holdout rows, score k-NN drift, map them with UMAP, summarise.

With `data_quality_metrics.enabled: false` (or a sub-part's switch off) the nodes return empty
tables, an empty index, a figure that says so and a summary with status "disabled", so every
output still saves.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict
from typing import Any

import faiss
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from judgeforge.config.data_generation import DataQualityMetricsConfig, DatasetColumns, MetricConfig
from judgeforge.config.diversity import DiversityConfig, shares_with_remainder
from judgeforge.diagnostics import coverage, drift, plots, quality
from judgeforge.diagnostics.embedding import TextEmbedder, embed_texts
from judgeforge.diagnostics.projection import MIN_FIT_ROWS, fit_rows, project
from judgeforge.diagnostics.texts import (
    EMBEDDED_TEXT,
    HOLDOUT_SPLIT,
    SPLIT,
    SYNTHETIC_SPLIT,
    build_diagnostic_table,
    empty_diagnostic_table,
)
from judgeforge.pipelines.synthesis.plan import ATTRIBUTE_PREFIX
from judgeforge.schema import ROW_ID

logger = logging.getLogger(__name__)

EMBEDDING = "embedding"
SCORE = "score"
PERCENTILE = "percentile"
FLAGGED = "flagged"
NEAREST_IDS = "nearest_holdout_ids"
NEAREST_DISTANCE = "nearest_distance"
DISABLED = "disabled"
SKIPPED = "skipped"
OK = "ok"
# A synthetic row this close to a holdout row (cosine similarity ≥ 0.95) is a near-duplicate of it.
NEAR_DUPLICATE_MAX_DISTANCE = 0.05
NEAR_DUPLICATE_EXAMPLES = 10


def collect_diagnostic_rows(
    train_table: pd.DataFrame,
    holdout_table: pd.DataFrame,
    metric: MetricConfig,
    columns: DatasetColumns,
    settings: DataQualityMetricsConfig,
) -> pd.DataFrame:
    """Return synthetic and holdout rows side by side with the text each is embedded as (empty when disabled)."""
    if not settings.enabled:
        return empty_diagnostic_table(columns)
    table = build_diagnostic_table(train_table, holdout_table, columns, metric.input_format)
    for note in _input_notes(table, columns):
        logger.warning("diagnostics: %s", note)
    return table


def embed_diagnostic_rows(diagnostic_rows: pd.DataFrame, embedding_client: TextEmbedder) -> pd.DataFrame:
    """Return the diagnostic rows with a unit-length float32 `embedding` each (no call when there are no rows)."""
    vectors = embed_texts(embedding_client, diagnostic_rows[EMBEDDED_TEXT].tolist())
    return diagnostic_rows.assign(**{EMBEDDING: list(vectors)})


def build_holdout_index(text_embeddings: pd.DataFrame, settings: DataQualityMetricsConfig) -> faiss.Index:
    """Return a FAISS index of the holdout embeddings (empty when drift is off)."""
    holdout = _matrix(_rows_of(text_embeddings, HOLDOUT_SPLIT))
    if not (settings.enabled and settings.drift.enabled) or len(holdout) == 0:
        return faiss.IndexFlatIP(holdout.shape[1])
    return drift.build_index(holdout, settings.random_seed)


def score_drift(
    text_embeddings: pd.DataFrame,
    faiss_index: faiss.Index,
    columns: DatasetColumns,
    settings: DataQualityMetricsConfig,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Return (drift table of the synthetic rows, leave-one-out scores of the holdout rows, drift report)."""
    synthetic_rows = _rows_of(text_embeddings, SYNTHETIC_SPLIT)
    holdout_rows = _rows_of(text_embeddings, HOLDOUT_SPLIT)
    empty = _empty_drift_tables(columns)
    if not (settings.enabled and settings.drift.enabled):
        return *empty, {"status": DISABLED}
    if len(holdout_rows) < 2 or synthetic_rows.empty:
        reason = (
            f"drift needs at least 2 holdout rows (got {len(holdout_rows)})"
            if len(holdout_rows) < 2
            else "there are no synthetic rows to score"
        )
        logger.warning("diagnostics: drift skipped: %s", reason)
        return *empty, {"status": SKIPPED, "notes": [f"drift skipped: {reason}"]}

    holdout, synthetic = _matrix(holdout_rows), _matrix(synthetic_rows)
    _check_index_matches(faiss_index, holdout)
    requested = settings.drift.k_neighbors
    # Each holdout row's reference leaves the row itself out, so it has one neighbour fewer to offer.
    k = min(requested, len(holdout) - 1)
    notes = []
    if k < requested:
        notes.append(
            f"k_neighbors lowered from {requested} to {k}: the holdout has {len(holdout)} rows "
            "and a holdout row's reference excludes itself"
        )
        logger.warning("diagnostics: %s", notes[-1])

    found = drift.search(faiss_index, holdout, synthetic, k)
    reference = drift.leave_one_out(faiss_index, holdout, k).scores
    cut = drift.threshold_score(reference, settings.drift.drift_threshold)
    scores = found.scores
    holdout_ids = holdout_rows[ROW_ID].to_numpy(dtype=object)
    drift_table = synthetic_rows[_kept_columns(columns)].assign(
        **{
            SCORE: scores,
            PERCENTILE: drift.reference_percentiles(scores, reference),
            FLAGGED: scores > cut,
            NEAREST_IDS: list(holdout_ids[found.positions]),
            NEAREST_DISTANCE: found.distances[:, 0],
        }
    )
    if settings.drift.sort_by_score_desc:
        drift_table = drift_table.sort_values(SCORE, ascending=False, kind="stable")
    reference_table = holdout_rows[[ROW_ID, *_label_columns(columns)]].assign(**{SCORE: reference})

    index_report = drift.describe_index(faiss_index, k)
    if drift.is_approximate(faiss_index):
        index_report["quality"] = asdict(drift.search_quality(faiss_index, holdout, synthetic, found, settings.random_seed))
    report = {
        "status": OK,
        "notes": notes,
        "distance": "cosine",
        "k_neighbors_requested": requested,
        "k_neighbors_used": k,
        "threshold": settings.drift.drift_threshold,
        "threshold_score": cut,
        "index": index_report,
        "reference_score_quantiles": quality.quantile_summary(reference),
    }
    return drift_table.reset_index(drop=True), reference_table.reset_index(drop=True), report


def project_umap(
    text_embeddings: pd.DataFrame, columns: DatasetColumns, settings: DataQualityMetricsConfig
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Return 2-d UMAP coordinates of every row and a report of how they were made (empty when UMAP is off)."""
    empty = pd.DataFrame(columns=[ROW_ID, SPLIT, *_label_columns(columns), "x", "y"])
    umap_settings = settings.umap
    if not (settings.enabled and umap_settings.enabled):
        return empty, {"status": DISABLED}
    synthetic_rows = _rows_of(text_embeddings, SYNTHETIC_SPLIT)
    holdout_rows = _rows_of(text_embeddings, HOLDOUT_SPLIT)
    rows_to_fit = fit_rows(umap_settings.mode, len(synthetic_rows), len(holdout_rows))
    if rows_to_fit < MIN_FIT_ROWS:
        note = f"UMAP skipped: mode {umap_settings.mode} fits on {rows_to_fit} rows, it needs at least {MIN_FIT_ROWS}"
        logger.warning("diagnostics: %s", note)
        return empty, {"status": SKIPPED, "notes": [note]}

    projection = project(
        _matrix(synthetic_rows),
        _matrix(holdout_rows),
        umap_settings.mode,
        umap_settings.umap_neighbors,
        umap_settings.umap_min_dist,
        settings.random_seed,
    )
    kept = [ROW_ID, SPLIT, *_label_columns(columns)]
    coordinates = pd.concat(
        [
            synthetic_rows[kept].assign(x=projection.synthetic[:, 0], y=projection.synthetic[:, 1]),
            holdout_rows[kept].assign(x=projection.holdout[:, 0], y=projection.holdout[:, 1]),
        ],
        ignore_index=True,
    )
    report = {
        "status": OK,
        "mode": umap_settings.mode,
        "fit_rows": rows_to_fit,
        "neighbors_requested": umap_settings.umap_neighbors,
        "neighbors_used": projection.neighbours_used,
        "min_dist": umap_settings.umap_min_dist,
        "random_seed": settings.random_seed,
    }
    return coordinates, report


def plot_umap(umap_coordinates: pd.DataFrame, umap_report: dict[str, Any], columns: DatasetColumns) -> Figure:
    """Return the UMAP scatter, coloured by split and marked by label (or a figure saying why there is none)."""
    if umap_coordinates.empty:
        return plots.message_figure(_absence_message("UMAP", umap_report))
    title = f"UMAP ({umap_report['mode']}, {umap_report['neighbors_used']} neighbours, min_dist {umap_report['min_dist']:g})"
    return plots.umap_scatter(umap_coordinates, SPLIT, columns.label, title)


def plot_drift_histogram(drift_scores: pd.DataFrame, drift_reference: pd.DataFrame, drift_report: dict[str, Any]) -> Figure:
    """Return the histogram of synthetic and holdout drift scores with the threshold line."""
    if drift_scores.empty:
        return plots.message_figure(_absence_message("drift", drift_report))
    return plots.drift_histogram(
        drift_scores[SCORE].to_numpy(),
        drift_reference[SCORE].to_numpy(),
        drift_report["threshold_score"],
        drift_report["threshold"],
    )


def plot_drift_by_class(drift_scores: pd.DataFrame, drift_report: dict[str, Any], columns: DatasetColumns) -> Figure:
    """Return the bar chart of the flagged share of synthetic rows per class."""
    if drift_scores.empty:
        return plots.message_figure(_absence_message("drift", drift_report))
    return plots.drift_rate_by_class(drift_rates_by_class(drift_scores, columns.label), float(drift_scores[FLAGGED].mean()))


def summarise_diagnostics(
    text_embeddings: pd.DataFrame,
    drift_scores: pd.DataFrame,
    drift_report: dict[str, Any],
    umap_report: dict[str, Any],
    coverage_report: dict[str, Any],
    columns: DatasetColumns,
    settings: DataQualityMetricsConfig,
) -> dict[str, Any]:
    """Return the JSON summary: drift rates, score quantiles, near-duplicates, class balance, lengths, diversity, coverage."""
    if not settings.enabled:
        return {"status": DISABLED, "notes": ["data_quality_metrics.enabled is false"]}
    splits = {split: _rows_of(text_embeddings, split) for split in (SYNTHETIC_SPLIT, HOLDOUT_SPLIT)}
    notes = _input_notes(text_embeddings, columns) + drift_report.get("notes", []) + umap_report.get("notes", [])
    return {
        "status": OK,
        "notes": notes,
        "rows": {split: len(rows) for split, rows in splits.items()},
        "class_balance": {
            split: quality.class_balance(rows[columns.label]) if columns.label else None for split, rows in splits.items()
        },
        "text_length": {
            split: {feature: quality.text_lengths(rows[feature]) for feature in columns.features}
            for split, rows in splits.items()
        },
        "diversity": {split: _diversity(rows, columns) for split, rows in splits.items()},
        "coverage": coverage_report,
        "drift": _drift_section(drift_scores, drift_report, columns),
        "near_duplicates": _near_duplicate_section(drift_scores, splits, drift_report),
        "umap": umap_report,
    }


def measure_coverage(
    text_embeddings: pd.DataFrame,
    synthetic_examples: pd.DataFrame,
    columns: DatasetColumns,
    diversity: DiversityConfig,
    settings: DataQualityMetricsConfig,
) -> dict[str, Any]:
    """Return precision/recall/density/coverage against the holdout (overall, per class, per plan value), distinct-n per value, and realised vs requested shares."""
    if not settings.enabled:
        return {"status": DISABLED}
    holdout = _rows_of(text_embeddings, HOLDOUT_SPLIT)
    values = [c for c in synthetic_examples.columns if c.startswith(ATTRIBUTE_PREFIX)] + ["language", "persona_id", "generator", "topic"]
    values = [c for c in values if c in synthetic_examples.columns and synthetic_examples[c].astype(str).str.len().any()]
    synthetic = _rows_of(text_embeddings, SYNTHETIC_SPLIT).merge(synthetic_examples[[ROW_ID, *values]], on=ROW_ID, how="left")
    real = _matrix(holdout)
    per_class = {}
    if columns.label:
        for label, rows in synthetic.groupby(synthetic[columns.label].astype(str)):
            per_class[label] = {"rows": len(rows), **coverage.prdc(_matrix(holdout[holdout[columns.label].astype(str) == label]), _matrix(rows))}
    per_value = {
        column: {
            str(value): {"rows": len(rows), **coverage.prdc(real, _matrix(rows)), **quality.distinct_ngram_ratios(rows[EMBEDDED_TEXT])}
            for value, rows in synthetic.groupby(column)
        }
        for column in values
    }
    requested = {f"{ATTRIBUTE_PREFIX}{a.id}": a.shares() for a in diversity.sampled_attributes}
    if diversity.languages:
        requested["language"] = shares_with_remainder({code: lang.sample_rate for code, lang in diversity.languages.items()})
    shares = {
        column: coverage.share_gaps(wanted, synthetic_examples[column].astype(str).value_counts(normalize=True).to_dict())
        for column, wanted in requested.items()
        if column in synthetic_examples.columns
    }
    return {
        "status": OK,
        "neighbours": coverage.PRDC_NEIGHBOURS,
        "overall": coverage.prdc(real, _matrix(synthetic)),
        "per_class": per_class,
        "per_value": per_value,
        "shares": shares,
    }


def drift_rates_by_class(drift_scores: pd.DataFrame, label_column: str | None) -> pd.DataFrame:
    """Return rows, flagged rows and flagged share per label (one row "all" without a label column)."""
    labels = drift_scores[label_column].astype(str) if label_column else pd.Series("all", index=drift_scores.index)
    grouped = drift_scores[FLAGGED].groupby(labels.rename("label"), sort=True)
    return grouped.agg(rows="size", flagged="sum", flagged_share="mean").reset_index()


def _drift_section(drift_scores: pd.DataFrame, drift_report: dict[str, Any], columns: DatasetColumns) -> dict[str, Any]:
    """Return the drift part of the summary."""
    if drift_report["status"] != OK:
        return drift_report
    by_class = drift_rates_by_class(drift_scores, columns.label)
    return {
        **drift_report,
        "flagged_rows": int(drift_scores[FLAGGED].sum()),
        "drift_rate": float(drift_scores[FLAGGED].mean()),
        "drift_rate_by_class": {
            str(row.label): {"rows": int(row.rows), "flagged": int(row.flagged), "share": float(row.flagged_share)}
            for row in by_class.itertuples()
        },
        "score_quantiles": quality.quantile_summary(drift_scores[SCORE].to_numpy()),
    }


def _near_duplicate_section(
    drift_scores: pd.DataFrame, splits: dict[str, pd.DataFrame], drift_report: dict[str, Any]
) -> dict[str, Any]:
    """Return synthetic rows that copy a holdout text exactly, and (with drift) those nearly on top of one."""
    holdout_texts = set(splits[HOLDOUT_SPLIT][EMBEDDED_TEXT])
    section: dict[str, Any] = {
        "exact_text_matches": int(splits[SYNTHETIC_SPLIT][EMBEDDED_TEXT].isin(holdout_texts).sum()),
    }
    if drift_report["status"] != OK:
        section["near_duplicates"] = f"not computed: drift is {drift_report['status']}"
        return section
    close = drift_scores[drift_scores[NEAREST_DISTANCE] <= NEAR_DUPLICATE_MAX_DISTANCE]
    closest = close.nsmallest(NEAR_DUPLICATE_EXAMPLES, NEAREST_DISTANCE)
    section.update(
        max_cosine_distance=NEAR_DUPLICATE_MAX_DISTANCE,
        rows=len(close),
        share=len(close) / len(drift_scores),
        closest=[
            {"row_id": row_id, "holdout_row_id": str(ids[0]), "cosine_distance": float(distance)}
            for row_id, ids, distance in zip(closest[ROW_ID], closest[NEAREST_IDS], closest[NEAREST_DISTANCE])
        ],
    )
    return section


def _diversity(rows: pd.DataFrame, columns: DatasetColumns) -> dict[str, float | None]:
    """Return mean pairwise cosine distance of the embeddings and distinct n-gram ratios of the feature text."""
    fields = [rows[column].astype(object).fillna("").astype(str) for column in columns.features]
    feature_text = functools.reduce(lambda text, field: text + " " + field, fields)
    return {
        "mean_pairwise_cosine_distance": quality.mean_pairwise_cosine_distance(_matrix(rows)),
        **quality.distinct_ngram_ratios(feature_text),
    }


def _input_notes(table: pd.DataFrame, columns: DatasetColumns) -> list[str]:
    """Return the notes about empty splits or a one-class holdout."""
    return quality.input_notes(table, SPLIT, columns.label, (SYNTHETIC_SPLIT, HOLDOUT_SPLIT))


def _absence_message(part: str, report: dict[str, Any]) -> str:
    """Return the sentence a figure shows in place of a plot that was switched off or skipped."""
    if report["status"] == DISABLED:
        return f"{part} is disabled in data_quality_metrics"
    return "; ".join(report.get("notes", [])) or f"{part}: nothing to show"


def _check_index_matches(index: faiss.Index, holdout: np.ndarray) -> None:
    """Raise a one-line error when the index was not built from these holdout embeddings."""
    if index.ntotal != len(holdout) or index.d != holdout.shape[1]:
        raise ValueError(
            f"faiss_index holds {index.ntotal} vectors of dimension {index.d}, but text_embeddings has "
            f"{len(holdout)} holdout rows of dimension {holdout.shape[1]}: rebuild the index"
        )


def _rows_of(table: pd.DataFrame, split: str) -> pd.DataFrame:
    """Return the rows of one split."""
    return table[table[SPLIT] == split]


def _matrix(rows: pd.DataFrame) -> np.ndarray:
    """Return the embedding column as a contiguous float32 matrix."""
    if rows.empty:
        return np.zeros((0, 0), dtype=np.float32)
    return np.ascontiguousarray(np.stack(rows[EMBEDDING].to_numpy()), dtype=np.float32)


def _label_columns(columns: DatasetColumns) -> list[str]:
    """Return the label column in a list, or an empty list when there is none."""
    return [columns.label] if columns.label else []


def _kept_columns(columns: DatasetColumns) -> list[str]:
    """Return the row id, feature and label columns."""
    return [ROW_ID, *columns.features, *_label_columns(columns)]


def _empty_drift_tables(columns: DatasetColumns) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return a drift table and a reference table with no rows."""
    drift_columns = [*_kept_columns(columns), SCORE, PERCENTILE, FLAGGED, NEAREST_IDS, NEAREST_DISTANCE]
    reference_columns = [ROW_ID, *_label_columns(columns), SCORE]
    return pd.DataFrame(columns=drift_columns), pd.DataFrame(columns=reference_columns)
