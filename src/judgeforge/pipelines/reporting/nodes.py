"""Pure functions of the reporting pipeline: each stage's outputs (None when absent) → one section of the report.

Every section is a plain dict with a `status`: "ok", "disabled" (the stage ran switched off) or
"absent" (its outputs are not on disk: the stage has not run). Metric dicts written by other
stages are read defensively: keys that are missing are left out, keys added later (baselines,
calibration, coverage) are shown when they have a known shape.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from pydantic import BaseModel

import judgeforge
from judgeforge.config import RunConfig, validate_run_config
from judgeforge.config.labels import label_key
from judgeforge.config.run import judge_output_dir
from judgeforge.diagnostics import plots
from judgeforge.pipelines.reporting import figures
from judgeforge.schema import (
    REJECT_DETAIL,
    REJECT_REASON,
    ROW_ID,
    SEED_SOURCE,
    SOURCE,
    SYNTHETIC_SOURCE,
)

OK, DISABLED, ABSENT = "ok", "disabled", "absent"
STAGES = ("ingestion", "synthesis", "labelling", "diagnostics", "training")
# How many rows each example list shows; the full tables are in the stage outputs.
EXAMPLES_PER_REASON = 3
SAMPLES_PER_CLASS = 3
MOST_DRIFTED = 8
DISAGREEMENTS = 12
WORST_MISTAKES = 10
# Model names of the training metrics, as the report calls them; other models keep their key.
MODEL_TITLES = {"fine_tuned": "fine-tuned judge", "base_model": "base model (zero-shot)"}
HEADLINE_SCORES = ("accuracy", "macro_f1", "weighted_f1")
# Prefix of the row ids that seed rows get in the train split (see synthesis.assemble_train_and_test).
SEED_TRAIN_PREFIX = "seed-"
SPLIT = "split"
# Shown for a row whose text is in no table on disk (label-only rows, a dataset from another run).
NO_TEXT = "(text not on disk)"
TEMPLATE = "report.html.j2"


def describe_config(parameters: dict[str, Any]) -> dict[str, Any]:
    """Return what the report needs from the parameters: a hash, a summary, the columns and the class names."""
    config = validate_run_config(_plain(parameters))
    canonical = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    generation = config.data_generation
    columns = generation.source_data.dataset.columns if generation else None
    return {
        "hash": hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12],
        "metric_name": config.metric_name,
        "features": list(columns.features) if columns else ["text"],
        "label": columns.label if columns else None,
        "class_names": {label_key(c.label): c.name for c in (generation.metric.class_labels or [])}
        if generation
        else {},
        "summary": _config_summary(config),
        "judgeforge_version": judgeforge.__version__,
    }


def _plain(value: Any) -> Any:
    """Return parameters as plain data: Kedro hands nodes the parameters with validated sections as pydantic models."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _config_summary(config: RunConfig) -> list[tuple[str, str]]:
    """Return (setting, value) rows of the choices that shape a run."""
    rows = [("run steps", ", ".join(config.run_steps))]
    generation, training = config.data_generation, config.training
    if generation is not None:
        metric, llm, labelling = generation.metric, generation.llm, generation.labelling
        classes = ", ".join(f"{c.name} ({c.label})" for c in metric.class_labels or [])
        rows += [
            ("metric", f"{metric.name} · {metric.type} · {metric.input_format} input"),
            ("classes", classes or "derived from llmaj_source_prompt"),
            ("generator", " / ".join(generation.generator)),
            ("embedding model", llm.embedding_model),
            ("synthetic examples requested", str(generation.generation.total_examples)),
            (
                "labelling",
                f"on · judge {' / '.join(generation.judge)} · policy {labelling.disagreement_policy}"
                if labelling.enabled
                else "off",
            ),
            ("diagnostics", "on" if generation.data_quality_metrics.enabled else "off"),
            ("dataset", generation.dataset_path),
        ]
    if training is not None:
        hyper, model = training.training, training.model
        rows += [
            ("judge base model", model.name),
            (
                "judge training",
                f"{hyper.num_train_epochs} epochs · batch {hyper.per_device_train_batch_size} · LoRA r={model.lora_r}",
            ),
            ("judge folder", judge_output_dir(config)),
        ]
    return rows


def row_texts(
    seed_rows: pd.DataFrame | None, synthetic_examples: pd.DataFrame | None, config: dict[str, Any]
) -> dict[str, str]:
    """Return the display text of every known row by row id (seed rows also under their train-split id)."""
    texts: dict[str, str] = {}
    for table, prefixes in ((seed_rows, ("", SEED_TRAIN_PREFIX)), (synthetic_examples, ("",))):
        if table is None or table.empty:
            continue
        shown = _display_texts(table, config["features"])
        for prefix in prefixes:
            texts.update(zip(prefix + table[ROW_ID].astype(str), shown))
    return texts


def _display_texts(table: pd.DataFrame, features: list[str]) -> list[str]:
    """Return one text per row: the feature itself, or `feature: value` lines for several features."""
    present = [f for f in features if f in table.columns]
    if len(present) == 1:
        return table[present[0]].astype(str).tolist()
    return ["\n".join(f"{f}: {row[f]}" for f in present) for _, row in table.iterrows()]


def summarise_run(
    config: dict[str, Any],
    ingestion_report: dict[str, Any] | None,
    generation_report: dict[str, Any] | None,
    labelling_report: dict[str, Any] | None,
    diagnostics_summary: dict[str, Any] | None,
    training_metrics: dict[str, Any] | None,
) -> dict[str, Any]:
    """Return the run section: config summary and hash, each stage's state, time, calls, tokens, cost, and key figures."""
    stages = [
        _stage_row("ingestion", ingestion_report, None, None),
        _stage_row(
            "synthesis",
            generation_report,
            _get(generation_report, "usage"),
            _get(generation_report, "wall_time_s"),
        ),
        _stage_row(
            "labelling",
            labelling_report,
            _get(labelling_report, "usage"),
            _get(labelling_report, "usage", "wall_time_s"),
        ),
        _stage_row("diagnostics", diagnostics_summary, None, None),
        _stage_row(
            "training",
            training_metrics,
            None,
            _get(training_metrics, "training", "train_runtime_s"),
        ),
    ]
    totals = {
        key: sum(s[key] or 0 for s in stages)
        for key in (
            "wall_time_s",
            "requests",
            "cache_hits",
            "input_tokens",
            "output_tokens",
            "cost_usd",
        )
    }
    return {
        "status": OK,
        "config": config,
        "stages": stages,
        "totals": totals,
        "priced": all(s["priced"] for s in stages),
        "highlights": _highlights(
            generation_report, labelling_report, diagnostics_summary, training_metrics, totals
        ),
        "written_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _stage_row(
    stage: str, report: dict[str, Any] | None, usage: dict[str, Any] | None, wall_time: float | None
) -> dict[str, Any]:
    """Return one stage's line: ran / disabled / not run, with the usage figures it records."""
    status = ABSENT if report is None else DISABLED if report.get("status") == DISABLED else OK
    usage = usage or {}
    return {
        "stage": stage,
        "status": status,
        "wall_time_s": wall_time,
        "requests": usage.get("requests"),
        "cache_hits": usage.get("cache_hits"),
        "input_tokens": usage.get("input_tokens"),
        "output_tokens": usage.get("output_tokens"),
        "cost_usd": usage.get("cost_usd"),
        "priced": usage.get("priced", True),
    }


def _highlights(
    generation_report: dict[str, Any] | None,
    labelling_report: dict[str, Any] | None,
    diagnostics_summary: dict[str, Any] | None,
    training_metrics: dict[str, Any] | None,
    totals: dict[str, Any],
) -> list[dict[str, str]]:
    """Return the key figures shown at the top: delivered rows, drift, agreement, the judge's macro-F1 and lift, cost."""
    cards = []
    if generation_report:
        cards.append(
            {
                "label": "synthetic rows",
                "value": f"{generation_report.get('delivered_total')} / {generation_report.get('requested_total')}",
                "note": "delivered / requested",
            }
        )
    drift_rate = _get(diagnostics_summary, "drift", "drift_rate")
    if drift_rate is not None:
        cards.append(
            {"label": "drift rate", "value": f"{drift_rate:.1%}", "note": "synthetic rows flagged"}
        )
    agreement = _get(labelling_report, "agreement", "overall", "rate")
    if agreement is not None:
        cards.append(
            {
                "label": "judge agreement",
                "value": f"{agreement:.1%}",
                "note": "LLM judge vs generator",
            }
        )
    judge_f1 = _get(training_metrics, "fine_tuned", "macro_f1")
    if judge_f1 is not None:
        lift = _get(training_metrics, "lift", "macro_f1")
        note = f"lift {lift:+.3f} over the base model" if lift is not None else "fine-tuned judge"
        cards.append({"label": "judge macro-F1", "value": f"{judge_f1:.3f}", "note": note})
    cards.append(
        {
            "label": "cost",
            "value": f"${totals['cost_usd']:.4f}",
            "note": f"{totals['requests']} LLM calls, {totals['cache_hits']} from cache",
        }
    )
    return cards


def report_ingestion(
    ingestion_report: dict[str, Any] | None,
    seed_rejects: pd.DataFrame | None,
    config: dict[str, Any],
) -> dict[str, Any]:
    """Return the ingestion section: rows in/out per class and split, rejects by reason with a few examples."""
    if ingestion_report is None:
        return {"status": ABSENT}
    per_class = [
        {
            "label": _class_title(key, config),
            "enhancement": counts.get("enhancement", 0),
            "holdout": counts.get("holdout", 0),
        }
        for key, counts in (ingestion_report.get("per_class") or {}).items()
    ]
    return {
        "status": OK,
        "rows_in": ingestion_report.get("rows_in"),
        "rows_clean": ingestion_report.get("rows_clean"),
        "rows_rejected": ingestion_report.get("rows_rejected"),
        "per_class": per_class,
        "rejects": _rejects_by_reason(
            ingestion_report.get("rejected_by_reason") or {}, seed_rejects, config["features"]
        ),
    }


def _rejects_by_reason(
    counts: dict[str, int], rejects: pd.DataFrame | None, text_columns: list[str]
) -> list[dict[str, Any]]:
    """Return each reason that rejected rows, its count and a few example rows (detail and text)."""
    out = []
    for reason, count in counts.items():
        if not count:
            continue
        examples = (
            rejects[rejects[REJECT_REASON] == reason].head(EXAMPLES_PER_REASON)
            if rejects is not None
            else pd.DataFrame()
        )
        shown = [c for c in text_columns if c in examples.columns]
        out.append(
            {
                "reason": reason,
                "count": count,
                "examples": [
                    {
                        "detail": _text(row.get(REJECT_DETAIL)),
                        "text": " · ".join(_text(row[c]) for c in shown if _text(row[c])),
                    }
                    for _, row in examples.iterrows()
                ],
            }
        )
    return out


def report_generation(
    generation_report: dict[str, Any] | None,
    synthetic_examples: pd.DataFrame | None,
    synthetic_rejects: pd.DataFrame | None,
    seed_rows: pd.DataFrame | None,
    config: dict[str, Any],
) -> dict[str, Any]:
    """Return the generation section: requested vs delivered per class, rejects with examples, synthetic rows beside real ones."""
    if generation_report is None:
        return {"status": ABSENT}
    per_class_counts = generation_report.get("per_class") or {}
    calls = generation_report.get("calls_per_class") or {}
    per_class = [
        {
            "key": key,
            "label": _class_title(key, config),
            "requested": c.get("requested", 0),
            "delivered": c.get("delivered", 0),
            "calls": calls.get(key),
        }
        for key, c in per_class_counts.items()
    ]
    figure = figures.grouped_bars(
        [row["label"] for row in per_class],
        {
            "requested": [row["requested"] for row in per_class],
            "delivered": [row["delivered"] for row in per_class],
        },
        "examples",
        "Synthetic examples per class",
        "{:.0f}",
    )
    rejects = (
        synthetic_rejects.rename(columns={"raw_answer": "answer"})
        if synthetic_rejects is not None
        else None
    )
    return {
        "status": OK,
        "generator": f"{generation_report.get('provider')} / {generation_report.get('model')}",
        "requested_total": generation_report.get("requested_total"),
        "delivered_total": generation_report.get("delivered_total"),
        "rejected_total": generation_report.get("rejected_total"),
        "rounds": generation_report.get("rounds"),
        "per_class": per_class,
        "figure": figures.data_uri(figure),
        "rejects": _rejects_by_reason(
            generation_report.get("rejected_by_reason") or {},
            rejects,
            [*config["features"], "answer"],
        ),
        "samples": _samples_per_class(
            [row["key"] for row in per_class], synthetic_examples, seed_rows, config
        ),
    }


def _samples_per_class(
    keys: list[str],
    synthetic: pd.DataFrame | None,
    real: pd.DataFrame | None,
    config: dict[str, Any],
) -> list[dict[str, Any]]:
    """Return, per class, a few synthetic rows and a few real seed rows of the same class."""
    label = config["label"]

    def pick(table: pd.DataFrame | None, key: str) -> list[str]:
        if table is None or table.empty or not label or label not in table.columns:
            return []
        rows = table[table[label].astype(str) == key]
        return _display_texts(
            rows.sample(n=min(SAMPLES_PER_CLASS, len(rows)), random_state=0), config["features"]
        )

    return [
        {
            "label": _class_title(key, config),
            "synthetic": pick(synthetic, key),
            "real": pick(real, key),
        }
        for key in keys
    ]


def report_diagnostics(
    diagnostics_summary: dict[str, Any] | None,
    drift_scores: pd.DataFrame | None,
    drift_reference: pd.DataFrame | None,
    umap_coordinates: pd.DataFrame | None,
    texts: dict[str, str],
    config: dict[str, Any],
) -> dict[str, Any]:
    """Return the diagnostics section: drift figures and per class, most drifted rows beside their nearest real row, UMAP."""
    if diagnostics_summary is None:
        return {"status": ABSENT}
    if diagnostics_summary.get("status") == DISABLED:
        return {"status": DISABLED, "notes": diagnostics_summary.get("notes", [])}
    drift = diagnostics_summary.get("drift") or {}
    section: dict[str, Any] = {
        "status": OK,
        "notes": diagnostics_summary.get("notes", []),
        "drift": drift,
        "rows": diagnostics_summary.get("rows") or {},
        "diversity": diagnostics_summary.get("diversity") or {},
        "near_duplicates": diagnostics_summary.get("near_duplicates") or {},
        "coverage": diagnostics_summary.get("coverage"),
        "figures": {},
        "most_drifted": [],
    }
    if drift.get("status") == OK and drift_scores is not None and not drift_scores.empty:
        reference = (
            drift_reference["score"].to_numpy() if drift_reference is not None else np.array([])
        )
        section["figures"]["drift histogram"] = figures.data_uri(
            plots.drift_histogram(
                drift_scores["score"].to_numpy(),
                reference,
                drift["threshold_score"],
                drift["threshold"],
            )
        )
        rates = pd.DataFrame(
            [
                {"label": _class_title(key, config), "rows": v["rows"], "flagged_share": v["share"]}
                for key, v in (drift.get("drift_rate_by_class") or {}).items()
            ]
        )
        if not rates.empty:
            section["figures"]["drift rate by class"] = figures.data_uri(
                plots.drift_rate_by_class(rates, drift["drift_rate"])
            )
        section["most_drifted"] = _most_drifted(drift_scores, texts, config)
    if umap_coordinates is not None and not umap_coordinates.empty:
        umap = diagnostics_summary.get("umap") or {}
        title = f"UMAP ({umap.get('mode')}, {umap.get('neighbors_used')} neighbours)"
        label = config["label"] if config["label"] in umap_coordinates.columns else None
        section["figures"]["UMAP"] = figures.data_uri(
            plots.umap_scatter(umap_coordinates, SPLIT, label, title)
        )
    return section


def _most_drifted(
    drift_scores: pd.DataFrame, texts: dict[str, str], config: dict[str, Any]
) -> list[dict[str, Any]]:
    """Return the synthetic rows with the highest drift scores, each beside its nearest real (holdout) row."""
    label = config["label"]
    rows = []
    top = drift_scores.nlargest(MOST_DRIFTED, "score")
    for (_, row), text in zip(top.iterrows(), _display_texts(top, config["features"])):
        neighbours = list(row.get("nearest_holdout_ids", []))
        nearest = str(neighbours[0]) if neighbours else ""
        rows.append(
            {
                "row_id": row[ROW_ID],
                "label": _class_title(str(row[label]), config) if label in row else "",
                "score": float(row["score"]),
                "percentile": float(row.get("percentile", np.nan)),
                "flagged": bool(row.get("flagged", False)),
                "text": text,
                "nearest_id": nearest,
                "nearest_text": texts.get(nearest, NO_TEXT),
                "nearest_distance": float(row.get("nearest_distance", np.nan)),
            }
        )
    return rows


def report_labelling(
    labelling_report: dict[str, Any] | None,
    judge_labels: pd.DataFrame | None,
    texts: dict[str, str],
    config: dict[str, Any],
) -> dict[str, Any]:
    """Return the labelling section: agreement overall / per class / per source, its confusion matrix, disagreements with rationales."""
    if labelling_report is None:
        return {"status": ABSENT}
    if labelling_report.get("status") == DISABLED:
        return {"status": DISABLED, "notes": ["labelling.enabled is false"]}
    agreement = labelling_report.get("agreement") or {}
    matrix = labelling_report.get("confusion_matrix") or {}
    disagreements = []
    if judge_labels is not None and "agree" in judge_labels.columns:
        disagreeing = judge_labels[judge_labels["agree"].eq(False).fillna(False)]
        disagreements = [
            {
                "row_id": row[ROW_ID],
                "source": row.get(SOURCE, ""),
                "generator_label": _class_title(_text(row.get("generator_label")), config),
                "judge_label": _class_title(_text(row.get("judge_label")), config),
                "rationale": _text(row.get("rationale")),
                "text": texts.get(str(row[ROW_ID]), NO_TEXT),
            }
            for _, row in disagreeing.head(DISAGREEMENTS).iterrows()
        ]
    return {
        "status": OK,
        "judge": "{provider} / {model}".format(
            **(labelling_report.get("judge") or {"provider": "?", "model": "?"})
        ),
        "rows_judged": labelling_report.get("rows_judged"),
        "invalid_answers": labelling_report.get("invalid_answers"),
        "overall": agreement.get("overall") or {},
        "per_class": [
            {"label": _class_title(k, config), **v}
            for k, v in (agreement.get("per_class") or {}).items()
        ],
        "per_source": [{"source": k, **v} for k, v in (agreement.get("per_source") or {}).items()],
        "confusion": _confusion(
            [_class_title(k, config) for k in matrix.get("labels", [])],
            matrix.get("counts", []),
            "generator label",
            "judge label",
        ),
        "policy": labelling_report.get("disagreement_policy") or {},
        "disagreements": disagreements,
        "disagreements_total": int(judge_labels["agree"].eq(False).fillna(False).sum())
        if disagreements
        else 0,
    }


def report_judge(
    training_metrics: dict[str, Any] | None,
    test_predictions: pd.DataFrame | None,
    texts: dict[str, str],
) -> dict[str, Any]:
    """Return the judge section: every scored model side by side, per-class F1, confusion matrices, reliability, worst mistakes."""
    if training_metrics is None:
        return {"status": ABSENT}
    models = model_scores(training_metrics)
    labels = list(
        training_metrics.get("labels")
        or next(iter(models.values()), {}).get("per_class", {}).keys()
    )
    comparison = {
        title: [scores.get(name, 0.0) for name in HEADLINE_SCORES]
        for title, scores in models.items()
    }
    section: dict[str, Any] = {
        "status": OK,
        "test_rows": next(iter(models.values()), {}).get("n"),
        "models": [
            {"title": title, **{name: scores.get(name) for name in (*HEADLINE_SCORES, "n")}}
            for title, scores in models.items()
        ],
        "lift": training_metrics.get("lift") or {},
        "per_class": [
            {
                "label": label,
                "scores": {
                    title: (scores.get("per_class") or {}).get(label, {})
                    for title, scores in models.items()
                },
            }
            for label in labels
        ],
        "model_titles": list(models),
        "confusions": [
            _confusion(
                m["confusion_matrix"].get("labels", []),
                m["confusion_matrix"].get("rows_true_columns_predicted", []),
                "true",
                "predicted",
                title,
            )
            for title, m in models.items()
            if m.get("confusion_matrix")
        ],
        "figures": {},
        "calibration": [],
        "mistakes": [],
        "training": training_metrics.get("training") or {},
        "predictions": test_predictions is not None and not test_predictions.empty,
    }
    if models:
        section["figures"]["scores"] = figures.data_uri(
            figures.grouped_bars(
                list(HEADLINE_SCORES), comparison, "score", "Scores on the real test rows"
            )
        )
        per_class_f1 = {
            title: [(m.get("per_class") or {}).get(label, {}).get("f1", 0.0) for label in labels]
            for title, m in models.items()
        }
        section["figures"]["per-class F1"] = figures.data_uri(
            figures.grouped_bars(labels, per_class_f1, "F1", "F1 per class")
        )
    if test_predictions is not None and not test_predictions.empty:
        views = _prediction_views(test_predictions, labels, texts)
        section["figures"].update(views.pop("figures"))
        section.update(views)
    return section


def model_scores(training_metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the scores of every model in the metrics (top level or one level down), by display title."""
    found: dict[str, dict[str, Any]] = {}
    for key, value in training_metrics.items():
        if _is_scores(value):
            found[MODEL_TITLES.get(key, key.replace("_", " "))] = value
        elif isinstance(value, dict):
            found.update(
                {
                    f"{key.replace('_', ' ')}: {sub}": inner
                    for sub, inner in value.items()
                    if _is_scores(inner)
                }
            )
    return found


def _is_scores(value: Any) -> bool:
    return isinstance(value, dict) and "macro_f1" in value and "per_class" in value


def _prediction_views(
    predictions: pd.DataFrame, labels: list[str], texts: dict[str, str]
) -> dict[str, Any]:
    """Return the reliability diagram and calibration errors (when probabilities exist) and the worst mistakes on real rows."""
    probability_columns = {
        label: f"probability_{label}"
        for label in labels
        if f"probability_{label}" in predictions.columns
    }
    views: dict[str, Any] = {"figures": {}, "calibration": [], "mistakes": []}
    if not probability_columns or "model" not in predictions.columns:
        return views
    curves = {}
    for model, rows in predictions.groupby("model", sort=False):
        confidence = rows[list(probability_columns.values())].max(axis=1).to_numpy(dtype=float)
        if np.isnan(confidence).all():
            continue
        correct = (rows["label"].astype(str) == rows["prediction"].astype(str)).to_numpy()
        title = MODEL_TITLES.get(str(model), str(model).replace("_", " "))
        curves[title] = (confidence, correct)
        views["calibration"].append(
            {
                "model": title,
                "ece": figures.reliability_bins(confidence, correct)[3],
                "mean_confidence": float(confidence.mean()),
                "accuracy": float(correct.mean()),
            }
        )
    if curves:
        views["figures"]["reliability"] = figures.data_uri(figures.reliability_diagram(curves))
    judged = (
        predictions[predictions["model"] == "fine_tuned"]
        if (predictions["model"] == "fine_tuned").any()
        else predictions[predictions["model"] == predictions["model"].iloc[0]]
    )
    if SOURCE in judged.columns:
        judged = judged[judged[SOURCE] == SEED_SOURCE]
    wrong = judged[judged["label"].astype(str) != judged["prediction"].astype(str)]
    confidence = wrong[list(probability_columns.values())].max(axis=1)
    views["mistakes"] = [
        {
            "row_id": row.get(ROW_ID, ""),
            "text": texts.get(str(row.get(ROW_ID, "")), NO_TEXT),
            "label": row["label"],
            "prediction": row["prediction"],
            "probabilities": {
                label: float(row[column]) for label, column in probability_columns.items()
            },
        }
        for _, row in wrong.loc[confidence.sort_values(ascending=False).index]
        .head(WORST_MISTAKES)
        .iterrows()
    ]
    return views


def _confusion(
    labels: list[str], counts: list[list[int]], rows_title: str, columns_title: str, title: str = ""
) -> dict[str, Any]:
    """Return a confusion matrix ready for the heat table: cells with their count and shade (0-1)."""
    peak = max((max(row) for row in counts if row), default=0) or 1
    return {
        "title": title,
        "labels": labels,
        "rows_title": rows_title,
        "columns_title": columns_title,
        "cells": [[{"count": c, "shade": round(c / peak, 3)} for c in row] for row in counts],
    }


def render_report(
    run: dict[str, Any],
    ingestion: dict[str, Any],
    generation: dict[str, Any],
    diagnostics: dict[str, Any],
    labelling: dict[str, Any],
    judge: dict[str, Any],
) -> str:
    """Return the report as one self-contained HTML page (styles and images inline, no script)."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("judgeforge.pipelines.reporting", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template(TEMPLATE).render(
        run=run,
        ingestion=ingestion,
        generation=generation,
        diagnostics=diagnostics,
        labelling=labelling,
        judge=judge,
        synthetic=SYNTHETIC_SOURCE,
    )


def _class_title(key: str, config: dict[str, Any]) -> str:
    """Return `key · name` for a class the metric names, else the key."""
    name = config["class_names"].get(key)
    return f"{key} · {name}" if name and name != key else key


def _text(value: Any) -> str:
    """Return a cell as text, empty for null values (None, NaN, pd.NA)."""
    return "" if value is None or (np.ndim(value) == 0 and pd.isna(value)) else str(value)


def _get(tree: dict[str, Any] | None, *keys: str) -> Any:
    """Return tree[k1][k2]..., or None where a level is missing."""
    for key in keys:
        if not isinstance(tree, dict):
            return None
        tree = tree.get(key)
    return tree
