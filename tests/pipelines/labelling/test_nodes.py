"""Labelling nodes against the loopback server: agreement numbers, policies, invalid answers, metric extraction."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from judgeforge.config.data_generation import MetricConfig
from judgeforge.llm.errors import DeliveryShortfall
from judgeforge.pipelines.labelling.metric_extraction import MetricExtractionError
from judgeforge.pipelines.labelling.nodes import (
    apply_disagreement_policy,
    build_labelling_report,
    extract_metric,
    judge_train_rows,
    require_labels,
    train_rows,
)
from tests.pipelines.labelling.conftest import MESSAGE, SCRIPT, labelling, scripted_judge
from tests.support.openai_server import Reply


def judged(generated, metric, columns, output, client, **settings):
    """Return (judge labels, stats) for the generated train split."""
    return judge_train_rows(train_rows(generated, output), metric, columns, labelling(**settings), client)


def test_agreement_report_numbers_on_a_fixed_answer_script(openai_server, judge_client, generated, metric, columns, output) -> None:
    openai_server.respond_with(scripted_judge)
    judge_labels, stats = judged(generated, metric, columns, output, judge_client())
    report = build_labelling_report(judge_labels, stats, metric, labelling())

    assert len(openai_server.requests) == 8
    assert report["rows_judged"] == 8 and report["valid_answers"] == 8 and report["invalid_answers"] == 0
    assert report["agreement"]["overall"] == {"compared": 8, "agree": 6, "rate": 0.75}
    assert report["agreement"]["per_class"] == {"1": {"compared": 4, "agree": 3, "rate": 0.75}, "0": {"compared": 4, "agree": 3, "rate": 0.75}}
    assert report["agreement"]["per_source"]["synthetic"] == {"compared": 6, "agree": 4, "rate": 0.6667}
    assert report["agreement"]["per_source"]["seed"] == {"compared": 2, "agree": 2, "rate": 1.0}
    assert report["confusion_matrix"]["labels"] == ["1", "0"]
    assert report["confusion_matrix"]["counts"] == [[3, 1], [1, 3]]
    assert report["judge"] == {"provider": "openai", "model": "judge-model"}
    assert report["usage"]["succeeded"] == 8
    row = judge_labels.set_index("row_id").loc["syn-000002"]
    assert (row["judge_label"], row["generator_label"], bool(row["agree"]), row["status"]) == ("0", "1", False, "ok")
    assert row["rationale"] == "because of: Where is my refund, again"
    json.dumps(report)  # the report is saved as JSON


@pytest.mark.parametrize(
    ("policy", "train_labels", "relabelled", "dropped"),
    [
        ("keep", [label for label, _ in SCRIPT.values()], 0, 0),
        ("relabel", [judge for _, judge in SCRIPT.values()], 2, 0),
        ("drop", ["1", "1", "0", "0"], 0, 2),
    ],
)
def test_disagreement_policy_changes_synthetic_rows_only(
    openai_server, judge_client, generated, metric, columns, output, policy, train_labels, relabelled, dropped
) -> None:
    openai_server.respond_with(scripted_judge)
    flipped_seed = generated.map(lambda row: {"label": "0" if row["row_id"] == "seed-0" else row["label"]})
    judge_labels, stats = judged(flipped_seed, metric, columns, output, judge_client(), disagreement_policy=policy)
    result = apply_disagreement_policy(flipped_seed, judge_labels, columns, labelling(disagreement_policy=policy), output)
    report = build_labelling_report(judge_labels, stats, metric, labelling(disagreement_policy=policy))

    train = result["train"].to_pandas()
    assert train.loc[train["source"] == "synthetic", "label"].tolist() == train_labels
    assert train.loc[train["source"] == "seed", "label"].tolist() == ["0", "0"]  # the seed disagreement stays
    assert result["test"].to_pandas().equals(generated["test"].to_pandas())
    assert result["train"].features == generated["train"].features
    assert report["disagreement_policy"] == {"policy": policy, "relabelled": relabelled, "dropped": dropped}


def test_invalid_answers_are_asked_again_then_reported_never_guessed(openai_server, judge_client, generated, metric, columns, output) -> None:
    def answer(request) -> Reply:
        text = MESSAGE.search(request.last_user_message).group(1)
        if text == "Charged me twice":
            return Reply.text("Definitely a complaint!")  # never JSON
        if text == "Great prices" and "Attempt 2" not in request.last_user_message:
            return Reply.json({"label": "positive", "rationale": "?"})  # unknown label, then fixed
        return scripted_judge(request)

    openai_server.respond_with(answer)
    judge_labels, stats = judged(generated, metric, columns, output, judge_client(), invalid_answer_retries=2, disagreement_policy="relabel")
    rows = judge_labels.set_index("row_id")

    assert (rows.loc["syn-000001", "status"], rows.loc["syn-000001", "attempts"]) == ("invalid", 3)
    assert rows.loc["syn-000001", "detail"] == "the answer is not JSON"
    assert pd.isna(rows.loc["syn-000001", "judge_label"]) and pd.isna(rows.loc["syn-000001", "agree"])
    assert (rows.loc["syn-000005", "status"], rows.loc["syn-000005", "attempts"], rows.loc["syn-000005", "judge_label"]) == ("ok", 2, "0")
    assert len(openai_server.requests) == 8 + 2 + 1
    report = build_labelling_report(judge_labels, stats, metric, labelling(disagreement_policy="relabel"))
    assert report["invalid_answers"] == 1
    assert report["invalid_examples"] == [{"row_id": "syn-000001", "attempts": 3, "detail": "the answer is not JSON"}]
    assert report["agreement"]["overall"]["compared"] == 7
    result = apply_disagreement_policy(generated, judge_labels, columns, labelling(disagreement_policy="relabel"), output)
    kept = result["train"].to_pandas().set_index("row_id")
    assert kept.loc["syn-000001", "label"] == "1"  # the generator's label, untouched


def test_labelling_off_calls_no_judge_and_passes_the_dataset_through(openai_server, judge_client, generated, metric, columns, output) -> None:
    off = labelling(enabled=False)
    judge_labels, stats = judge_train_rows(train_rows(generated, output), metric, columns, off, judge_client())
    assert judge_labels.empty and stats == {"status": "disabled"}
    assert apply_disagreement_policy(generated, judge_labels, columns, off, output) is generated
    assert build_labelling_report(judge_labels, stats, metric, off) == {"status": "disabled"}
    assert openai_server.requests == []


PROMPT_ONLY = MetricConfig(
    name="toxicity",
    type="binary",
    input_format="single",
    llmaj_source_prompt="Rate the comment. Output 1 if it insults, threatens or harasses someone, else 0.\nComment: {text}",
)
DERIVED = {
    "description": "Whether a comment insults, threatens or harasses someone.",
    "class_labels": [
        {"name": "toxic", "label": "1", "rubric": "Insults, threats or harassment."},
        {"name": "clean", "label": "0", "rubric": "Anything else."},
    ],
}


def test_metric_extraction_derives_what_is_missing_and_records_it(openai_server, judge_client) -> None:
    openai_server.respond_with(lambda request: Reply.json(DERIVED))
    resolved, record = extract_metric(PROMPT_ONLY, labelling(), judge_client())
    assert resolved.description == DERIVED["description"]
    assert resolved.label_keys() == ["1", "0"]
    assert [c.rubric for c in resolved.class_labels] == ["Insults, threats or harassment.", "Anything else."]
    assert resolved.llmaj_source_prompt == PROMPT_ONLY.llmaj_source_prompt
    assert record["derived"] == ["description", "class_labels"]
    assert record["metric"]["class_labels"][0] == {"name": "toxic", "label": "1", "rubric": "Insults, threats or harassment."}
    assert MetricConfig.model_validate(record["metric"]) == resolved  # pasteable as is
    body = openai_server.requests[0].body
    assert body["response_format"]["type"] == "json_schema"


def test_metric_extraction_fills_only_missing_rubrics(openai_server, judge_client) -> None:
    openai_server.respond_with(lambda request: Reply.json(DERIVED))
    given = {**PROMPT_ONLY.model_dump(), "description": "Mine.", "class_labels": [{"name": "bad", "label": 1, "rubric": "My rubric."}, {"name": "ok", "label": 0}]}
    resolved, record = extract_metric(MetricConfig.model_validate(given), labelling(), judge_client())
    assert resolved.description == "Mine."
    assert [(c.name, c.rubric) for c in resolved.class_labels] == [("bad", "My rubric."), ("ok", "Anything else.")]
    assert record["derived"] == ["class_labels[1].rubric"]


def test_metric_extraction_does_not_call_when_nothing_is_missing(openai_server, judge_client, metric) -> None:
    resolved, record = extract_metric(metric, labelling(), judge_client())
    assert resolved == metric and record["derived"] == []
    assert openai_server.requests == []


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (Reply.text("Sure! The metric is about toxicity."), "not the expected JSON"),
        (Reply.json({"description": "x", "class_labels": [{"name": "a", "label": "1", "rubric": "r"}]}), "class_labels"),
        (Reply.json({**DERIVED, "class_labels": DERIVED["class_labels"] + [{"name": "meh", "label": "2", "rubric": "r"}]}), "binary metrics need exactly two classes"),
        (Reply.json({**DERIVED, "class_labels": [DERIVED["class_labels"][0], {**DERIVED["class_labels"][1], "label": "1"}]}), "label values must be unique"),
    ],
)
def test_metric_extraction_rejects_nonsense_after_bounded_retries(openai_server, judge_client, answer, reason) -> None:
    openai_server.respond_with(lambda request: answer)
    with pytest.raises(MetricExtractionError, match="could not derive description, class_labels from data_generation.metric.llmaj_source_prompt after 2 attempt") as error:
        extract_metric(PROMPT_ONLY, labelling(invalid_answer_retries=1), judge_client())
    assert reason in str(error.value)
    assert len(openai_server.requests) == 2


def test_rows_left_unlabelled_by_failed_requests_stop_the_run_beyond_the_tolerance(
    openai_server, judge_client, generated, metric, columns, output
) -> None:
    def answer(request) -> Reply:
        text = MESSAGE.search(request.last_user_message).group(1)
        return Reply.error(400, "context too long") if text in {"Charged me twice", "Great prices"} else scripted_judge(request)

    openai_server.respond_with(answer)
    judge_labels, stats = judged(generated, metric, columns, output, judge_client(), invalid_answer_retries=0)
    report = build_labelling_report(judge_labels, stats, metric, labelling(max_unlabelled_fraction=0.25))
    assert report["unlabelled_by_failed_requests"]["short_by"] == 2
    assert require_labels(judge_labels, report) is judge_labels  # 2 of 8 rows: within a quarter

    strict = build_labelling_report(judge_labels, stats, metric, labelling())
    with pytest.raises(DeliveryShortfall, match=r"could not label 2 of 8 rows .* first failure: request failed: PermanentError: HTTP 400: context too long"):
        require_labels(judge_labels, strict)
