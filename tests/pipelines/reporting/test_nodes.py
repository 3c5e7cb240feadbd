"""Report sections from what exists: nothing at all, a judge with baselines, predictions with or without probabilities."""

from __future__ import annotations

import copy
import re

import pandas as pd
import pytest

from judgeforge.config.data_generation import MetricConfig
from judgeforge.pipelines.reporting.nodes import (
    describe_config,
    model_scores,
    render_report,
    report_diagnostics,
    report_generation,
    report_ingestion,
    report_judge,
    report_labelling,
    row_texts,
    summarise_run,
)

SECTIONS = ("run", "ingestion", "generation", "diagnostics", "labelling", "judge")


def scores(accuracy: float, f1_true: float, f1_false: float, matrix: list[list[int]]) -> dict:
    """Classification metrics in the shape training writes."""
    return {
        "n": 4,
        "accuracy": accuracy,
        "macro_f1": (f1_true + f1_false) / 2,
        "weighted_f1": (f1_true + f1_false) / 2,
        "per_class": {
            "false": {"precision": 0.5, "recall": 0.5, "f1": f1_false, "support": 2},
            "true": {"precision": 0.5, "recall": 0.5, "f1": f1_true, "support": 2},
        },
        "confusion_matrix": {"labels": ["false", "true"], "rows_true_columns_predicted": matrix},
    }


@pytest.fixture
def config(raw_config: dict) -> dict:
    """The report's view of the minimal run config (metric toxicity: 1 = toxic, 0 = clean)."""
    return describe_config(raw_config)


def sections_of(html: str) -> dict[str, str]:
    """Return the HTML of each <section id=...>."""
    return dict(re.findall(r'<section id="(\w+)">(.*?)</section>', html, flags=re.DOTALL))


def render(config: dict, **sections: dict) -> str:
    nothing = {"status": "absent"}
    run = summarise_run(config, None, None, None, None, None)
    return render_report(**{"run": run, **{name: nothing for name in SECTIONS[1:]}, **sections})


def test_config_hash_follows_the_validated_config_and_classes_get_their_names(
    raw_config: dict, config: dict
) -> None:
    assert re.fullmatch(r"[0-9a-f]{12}", config["hash"])
    assert describe_config(copy.deepcopy(raw_config))["hash"] == config["hash"]
    assert (
        describe_config({**raw_config, "run_steps": ["data_generation"]})["hash"] != config["hash"]
    )
    # Kedro hands the node parameters whose sections other nodes validated: same config, same hash
    validated = {
        **raw_config,
        "data_generation": {
            **raw_config["data_generation"],
            "metric": MetricConfig.model_validate(raw_config["data_generation"]["metric"]),
        },
    }
    assert describe_config(validated)["hash"] == config["hash"]
    assert config["class_names"] == {"1": "toxic", "0": "clean"}
    assert ("judge folder", "data/toxicity-judge") in config["summary"]


def test_report_of_a_run_that_did_nothing_says_so_in_every_section(config: dict) -> None:
    run = summarise_run(config, None, None, None, None, None)
    html = render_report(
        run,
        report_ingestion(None, None, config),
        report_generation(None, None, None, None, config),
        report_diagnostics(None, None, None, None, {}, config),
        report_labelling(None, None, {}, config),
        report_judge(None, None, {}),
    )
    found = sections_of(html)
    assert list(found) == list(SECTIONS)
    assert [stage["status"] for stage in run["stages"]] == ["absent"] * 5
    for name, stage in zip(
        SECTIONS[1:], ("ingestion", "synthesis", "diagnostics", "labelling", "training")
    ):
        assert f"The {stage} stage has not run" in found[name]
    assert "<script" not in html and "<img" not in html


def test_switched_off_stages_are_told_apart_from_absent_ones(config: dict) -> None:
    run = summarise_run(
        config,
        {"rows_in": 3},
        None,
        {"status": "disabled"},
        {"status": "disabled", "notes": ["data_quality_metrics.enabled is false"]},
        None,
    )
    assert [stage["status"] for stage in run["stages"]] == [
        "ok",
        "absent",
        "disabled",
        "disabled",
        "absent",
    ]
    html = render(
        config,
        diagnostics=report_diagnostics(
            {"status": "disabled", "notes": ["off in config"]}, None, None, None, {}, config
        ),
    )
    assert (
        "The diagnostics stage ran switched off (off in config)" in sections_of(html)["diagnostics"]
    )
    # the default run's shape: labelling switched off writes a report with a status only
    html = render(config, labelling=report_labelling({"status": "disabled"}, None, {}, config))
    assert "The labelling stage ran switched off" in sections_of(html)["labelling"]


def test_run_totals_add_the_usage_each_stage_records(config: dict) -> None:
    usage = {
        "requests": 10,
        "cache_hits": 4,
        "input_tokens": 1000,
        "output_tokens": 50,
        "cost_usd": 0.5,
        "wall_time_s": 2.0,
        "priced": True,
    }
    generation = {"requested_total": 6, "delivered_total": 5, "usage": usage, "wall_time_s": 3.0}
    labelling = {
        "status": "ok",
        "usage": {**usage, "requests": 6, "cost_usd": 0.25},
        "agreement": {"overall": {"rate": 0.75}},
    }
    metrics = {
        "fine_tuned": scores(0.75, 0.8, 0.6, [[1, 1], [0, 2]]),
        "lift": {"macro_f1": 0.2},
        "training": {"train_runtime_s": 5.0},
    }
    run = summarise_run(config, {"rows_in": 3}, generation, labelling, None, metrics)
    assert run["totals"] == {
        "wall_time_s": 10.0,
        "requests": 16,
        "cache_hits": 8,
        "input_tokens": 2000,
        "output_tokens": 100,
        "cost_usd": 0.75,
    }
    cards = {card["label"]: card for card in run["highlights"]}
    assert cards["synthetic rows"]["value"] == "5 / 6"
    assert cards["judge agreement"]["value"] == "75.0%"
    assert (
        cards["judge macro-F1"]["value"] == "0.700" and "+0.200" in cards["judge macro-F1"]["note"]
    )
    assert cards["cost"]["value"] == "$0.7500"


def test_judge_section_shows_every_model_baselines_included(config: dict) -> None:
    metrics = {
        "labels": ["false", "true"],
        "base_model": scores(0.5, 0.6, 0.3, [[1, 1], [1, 1]]),
        "fine_tuned": scores(0.75, 0.8, 0.6, [[1, 1], [0, 2]]),
        "baselines": {
            "majority_class": scores(0.5, 0.67, 0.0, [[0, 2], [0, 2]]),
            "note": "not a model",
        },
        "lift": {"accuracy": 0.25, "macro_f1": 0.25},
    }
    assert list(model_scores(metrics)) == [
        "base model (zero-shot)",
        "fine-tuned judge",
        "baselines: majority_class",
    ]
    section = report_judge(metrics, None, {})
    assert [m["title"] for m in section["models"]] == [
        "base model (zero-shot)",
        "fine-tuned judge",
        "baselines: majority_class",
    ]
    assert len(section["confusions"]) == 3
    assert set(section["figures"]) == {"scores", "per-class F1"}
    judge = sections_of(render(config, judge=section))["judge"]
    assert "baselines: majority_class" in judge and "No test predictions on disk" in judge


def test_worst_mistakes_are_real_rows_most_confident_first_with_a_reliability_diagram(
    config: dict,
) -> None:
    metrics = {"labels": ["false", "true"], "fine_tuned": scores(0.5, 0.5, 0.5, [[1, 1], [1, 1]])}
    predictions = pd.DataFrame(
        {
            "model": ["fine_tuned"] * 4 + ["base_model"] * 4,
            "row_id": ["1", "2", "3", "4"] * 2,
            "source": ["seed"] * 8,
            "label": ["true", "false", "true", "false"] * 2,
            "prediction": ["false", "true", "true", "false"] * 2,
            "probability_false": [0.6, 0.05, 0.2, 0.75] * 2,
            "probability_true": [0.4, 0.95, 0.8, 0.25] * 2,
        }
    )
    texts = {"1": "late parcel", "2": "nice shop"}
    section = report_judge(metrics, predictions, texts)
    assert [(m["row_id"], m["text"]) for m in section["mistakes"]] == [
        ("2", "nice shop"),
        ("1", "late parcel"),
    ]
    assert section["mistakes"][0]["probabilities"] == {"false": 0.05, "true": 0.95}
    assert "reliability" in section["figures"]
    assert [row["model"] for row in section["calibration"]] == [
        "fine-tuned judge",
        "base model (zero-shot)",
    ]
    # confidences 0.6, 0.95, 0.8, 0.75 fall in four bins, one row each; accuracy 0, 0, 1, 1
    assert section["calibration"][0]["ece"] == pytest.approx((0.6 + 0.95 + 0.2 + 0.25) / 4)


def test_predictions_without_probabilities_give_no_reliability_diagram(config: dict) -> None:
    metrics = {"labels": ["false", "true"], "fine_tuned": scores(0.5, 0.5, 0.5, [[1, 1], [1, 1]])}
    predictions = pd.DataFrame(
        {"model": ["fine_tuned"], "row_id": ["1"], "label": ["true"], "prediction": ["false"]}
    )
    section = report_judge(metrics, predictions, {})
    assert "reliability" not in section["figures"] and section["calibration"] == []
    render(config, judge=section)


def test_generation_rejects_and_samples_sit_beside_real_rows_of_the_class(config: dict) -> None:
    report = {
        "requested_total": 4,
        "delivered_total": 3,
        "rejected_total": 1,
        "per_class": {"1": {"requested": 2, "delivered": 1}, "0": {"requested": 2, "delivered": 2}},
        "rejected_by_reason": {"invalid_output": 1, "duplicate": 0},
    }
    synthetic = pd.DataFrame(
        {
            "row_id": ["syn-0", "syn-1", "syn-2"],
            "text": ["made up 1", "made up 0", "made up 0b"],
            "label": ["1", "0", "0"],
        }
    )
    rejects = pd.DataFrame(
        {
            "class": ["toxic"],
            "reason": ["invalid_output"],
            "detail": ["no JSON"],
            "text": [None],
            "raw_answer": ["hello"],
        }
    )
    seed = pd.DataFrame(
        {"row_id": ["7", "8"], "text": ["real toxic", "real question"], "label": ["1", "0"]}
    )
    section = report_generation(report, synthetic, rejects, seed, config)
    assert section["per_class"][0]["label"] == "1 · toxic"
    assert section["rejects"] == [
        {
            "reason": "invalid_output",
            "count": 1,
            "examples": [{"detail": "no JSON", "text": "hello"}],
        }
    ]
    assert section["samples"][0] == {
        "label": "1 · toxic",
        "synthetic": ["made up 1"],
        "real": ["real toxic"],
    }
    assert section["figure"].startswith("data:image/png;base64,")
    texts = row_texts(seed, synthetic, config)
    assert texts["seed-7"] == texts["7"] == "real toxic" and texts["syn-2"] == "made up 0b"


def test_labelling_disagreements_carry_text_and_rationale(config: dict) -> None:
    report = {
        "status": "ok",
        "judge": {"provider": "openai", "model": "judge"},
        "rows_judged": 2,
        "invalid_answers": 0,
        "agreement": {
            "overall": {"compared": 2, "agree": 1, "rate": 0.5},
            "per_class": {"1": {"compared": 1, "agree": 1, "rate": 1.0}},
        },
        "confusion_matrix": {"labels": ["1", "0"], "counts": [[1, 0], [1, 0]]},
        "disagreement_policy": {"policy": "keep", "relabelled": 0, "dropped": 0},
    }
    labels = pd.DataFrame(
        {
            "row_id": ["syn-0", "seed-8"],
            "source": ["synthetic", "seed"],
            "judge_label": ["1", "1"],
            "rationale": ["asks for a fix", "asks for a refund"],
            "generator_label": ["1", "0"],
            "agree": pd.array([True, False], dtype="boolean"),
        }
    )
    section = report_labelling(report, labels, {"seed-8": "where is my refund"}, config)
    assert section["disagreements"] == [
        {
            "row_id": "seed-8",
            "source": "seed",
            "generator_label": "0 · clean",
            "judge_label": "1 · toxic",
            "rationale": "asks for a refund",
            "text": "where is my refund",
        }
    ]
    assert [[cell["count"] for cell in row] for row in section["confusion"]["cells"]] == [
        [1, 0],
        [1, 0],
    ]
    html = sections_of(render(config, labelling=section))["labelling"]
    assert "asks for a refund" in html and "where is my refund" in html


def test_rows_with_several_features_show_each_field(raw_config: dict) -> None:
    raw_config["data_generation"]["source_data"]["dataset"]["columns"]["features"] = [
        "question",
        "answer",
    ]
    raw_config["data_generation"]["metric"]["input_format"] = "tuple"
    raw_config["training"]["prompt_template"] = "Question: {question}\nAnswer: {answer}\nRelevant?"
    config = describe_config(raw_config)
    seed = pd.DataFrame(
        {"row_id": ["3"], "question": ["Where is it?"], "answer": ["On its way."], "label": ["0"]}
    )
    assert row_texts(seed, None, config) == {
        "3": "question: Where is it?\nanswer: On its way.",
        "seed-3": "question: Where is it?\nanswer: On its way.",
    }


def test_diagnostics_show_the_most_drifted_rows_beside_their_nearest_real_row(config: dict) -> None:
    summary = {
        "status": "ok",
        "rows": {"synthetic": 3, "holdout": 4},
        "drift": {
            "status": "ok",
            "threshold": 0.95,
            "threshold_score": 0.5,
            "k_neighbors_used": 2,
            "flagged_rows": 1,
            "drift_rate": 1 / 3,
            "drift_rate_by_class": {
                "1": {"rows": 2, "flagged": 1, "share": 0.5},
                "0": {"rows": 1, "flagged": 0, "share": 0.0},
            },
        },
        "umap": {"mode": "holdout_anchor", "neighbors_used": 3},
        "coverage": {"holdout rows with a synthetic neighbour": "75%"},
    }
    drift = pd.DataFrame(
        {
            "row_id": ["syn-0", "syn-1", "syn-2"],
            "text": ["far away", "close", "middle"],
            "label": ["1", "0", "1"],
            "score": [0.9, 0.1, 0.4],
            "percentile": [1.0, 0.0, 0.5],
            "flagged": [True, False, False],
            "nearest_holdout_ids": [["h2", "h1"], ["h1", "h2"], ["h3", "h1"]],
            "nearest_distance": [0.8, 0.05, 0.3],
        }
    )
    reference = pd.DataFrame(
        {
            "row_id": ["h1", "h2", "h3", "h4"],
            "label": ["1", "0", "1", "0"],
            "score": [0.2, 0.3, 0.4, 0.45],
        }
    )
    umap = pd.DataFrame(
        {
            "row_id": ["syn-0", "h1"],
            "split": ["synthetic", "holdout"],
            "label": ["1", "1"],
            "x": [0.0, 1.0],
            "y": [1.0, 0.0],
        }
    )
    section = report_diagnostics(
        summary, drift, reference, umap, {"h2": "a real question", "h3": "a real complaint"}, config
    )
    assert [
        (r["row_id"], r["text"], r["nearest_id"], r["nearest_text"])
        for r in section["most_drifted"]
    ] == [
        ("syn-0", "far away", "h2", "a real question"),
        ("syn-2", "middle", "h3", "a real complaint"),
        ("syn-1", "close", "h1", "(text not on disk)"),
    ]
    assert list(section["figures"]) == ["drift histogram", "drift rate by class", "UMAP"]
    html = sections_of(render(config, diagnostics=section))["diagnostics"]
    assert (
        "holdout rows with a synthetic neighbour" in html
        and "1 of 3 synthetic rows (33.3%)" in html
    )
