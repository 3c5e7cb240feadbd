"""Follow-up rounds: a class asks for what it lacks over its share of valid answers, so few rounds fill it."""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from judgeforge.config.data_generation import DatasetColumns
from judgeforge.llm.errors import ProviderRejected
from judgeforge.pipelines.synthesis.generation import SURPLUS, examples_to_ask
from judgeforge.pipelines.synthesis.nodes import build_generation_report
from tests.pipelines.synthesis.conftest import requested_class, unique_examples_responder
from tests.pipelines.synthesis.test_nodes import run_generation
from tests.run_yaml import EXAMPLES, loopback_run_yaml
from tests.support.openai_server import ReceivedRequest, Reply, example_answers

INVALID = Reply.text("Sorry, I cannot write that.")
ONE_AT_A_TIME = {"max_concurrent_requests": 1, "max_retries": 0}


def valid_when(
    is_valid: Callable[[int, ReceivedRequest], bool],
) -> Callable[[ReceivedRequest], Reply]:
    """Return a responder answering the n-th chat request (from 0) with a new example when `is_valid(n, request)`, else with no JSON."""
    numbers, good = itertools.count(), unique_examples_responder()

    def respond(request: ReceivedRequest) -> Reply:
        return good(request) if is_valid(next(numbers), request) else INVALID

    return respond


def half_valid_by_content(request: ReceivedRequest) -> Reply:
    """Answer about half the requests with a new example, the others with no JSON, decided by the request alone (its seed and prompt)."""
    digest = hashlib.sha256(json.dumps(request.body, sort_keys=True).encode()).hexdigest()
    if int(digest[0], 16) % 2:
        return INVALID
    return Reply.json(
        {"examples": [{"text": f"A {requested_class(request)} message, {digest[:12]}"}]}
    )


def test_examples_to_ask_divides_what_is_missing_by_the_valid_share() -> None:
    # 7 of 16 valid: the share counts one more valid example, 8 / 17
    assert examples_to_ask(9, valid=7, asked=16, attempts_per_example=3) == 20  # ceil(9 × 17 / 8)
    # no answer yet: exactly what is missing
    assert examples_to_ask(5, valid=0, asked=0, attempts_per_example=3) == 5
    # nothing valid: the share the budget is sized for (1 / max_attempts_per_example)
    assert examples_to_ask(4, valid=0, asked=8, attempts_per_example=3) == 12
    assert examples_to_ask(4, valid=0, asked=8, attempts_per_example=2.5) == 10
    # all valid, or more valid than asked: never fewer than what is missing
    assert examples_to_ask(2, valid=10, asked=10, attempts_per_example=3) == 2
    assert examples_to_ask(3, valid=5, asked=2, attempts_per_example=3) == 3


def test_half_invalid_answers_fill_the_quota_in_two_rounds_with_no_more_calls(
    openai_server, client_factory, metric, llm, columns, sampling, enhancement, holdout
) -> None:
    # every other answer is invalid (a round's requests are numbered one after another, so each
    # round of 16 gets 8 valid answers whatever order they arrive in). Asking for exactly what is
    # missing took 5 rounds of 16, 8, 4, 2 and 1 calls here (31 calls, judgeforge before this
    # change); asking for missing / share takes 2 rounds of 16.
    openai_server.respond_with(valid_when(lambda n, _: n % 2 == 0))
    synthetic, rejects, stats, _ = run_generation(
        client_factory(openai_server),
        {"1": 16, "0": 0},
        metric,
        llm,
        columns,
        sampling,
        enhancement,
        holdout,
    )
    assert synthetic["label"].value_counts().to_dict() == {"1": 16}
    assert stats["rounds"] == 2
    assert stats["calls_per_class"] == {"1": 32, "0": 0} and len(openai_server.requests) == 32
    assert stats["surplus_examples"] == 0
    assert rejects["reason"].value_counts().to_dict() == {"invalid_output": 16}
    # round 2 copies the plan rows of the calls that fell short, ids /r1/<i>
    follow_ups = synthetic.loc[~synthetic["call_id"].str.fullmatch(r"1/c\d+"), "call_id"]
    assert len(follow_ups) == 8 and follow_ups.str.fullmatch(r"1/c\d+/r1/\d+").all()


def test_valid_examples_past_the_quota_are_set_aside_as_surplus_within_the_budget(
    openai_server, client_factory, metric, llm, columns, sampling, enhancement, holdout
) -> None:
    # round 1 (8 calls) is all invalid, then every answer is valid: round 2 asks for 8 / (1/3)
    # = 24 examples, capped by the budget (3 × 8 = 24 calls, 8 spent): 16 calls, 8 too many
    openai_server.respond_with(valid_when(lambda n, _: n >= 8))
    quotas = {"1": 8, "0": 0}
    synthetic, rejects, stats, _ = run_generation(
        client_factory(openai_server),
        quotas,
        metric,
        llm,
        columns,
        sampling,
        enhancement,
        holdout,
        max_attempts_per_example=3,
    )
    assert synthetic["label"].value_counts().to_dict() == {"1": 8}
    assert stats["calls_per_class"]["1"] == 24 and len(openai_server.requests) == 24
    assert stats["rounds"] == 2
    surplus = rejects[rejects["reason"] == SURPLUS]
    assert len(surplus) == stats["surplus_examples"] == 8
    assert (surplus["detail"] == "valid, but class complaint already had its quota").all()
    assert surplus["text"].str.startswith("A complaint message number").all()
    assert not set(surplus["text"]) & set(synthetic["text"])
    report = build_generation_report(
        quotas, synthetic, rejects, stats, DatasetColumns(features=["text"], label="label")
    )
    # surplus examples are valid: counted apart from the rejects
    assert report["rejected_total"] == 8 == report["rejected_by_reason"]["invalid_output"]
    assert SURPLUS not in report["rejected_by_reason"]
    assert report["surplus_examples"] == 8
    assert report["by_generator"]["openai/test-model"]["rejected"] == 8


def test_a_class_that_never_answers_validly_spends_its_budget_in_two_rounds(
    openai_server, client_factory, metric, llm, columns, sampling, enhancement, holdout
) -> None:
    openai_server.respond_with(lambda request: INVALID)
    synthetic, _, stats, _ = run_generation(
        client_factory(openai_server),
        {"1": 4, "0": 2},
        metric,
        llm,
        columns,
        sampling,
        enhancement,
        holdout,
        max_attempts_per_example=3,
    )
    assert synthetic.empty
    # the budget: ceil(quota / examples_per_call) × 3 calls, never more
    assert stats["calls_per_class"] == {"1": 12, "0": 6} and len(openai_server.requests) == 18
    assert stats["rounds"] == 2
    assert stats["missing_per_class"] == {"1": 4, "0": 2}


def test_a_killed_run_run_again_reuses_every_paid_answer_and_ends_as_an_uninterrupted_one(
    openai_server, client_factory, metric, llm, columns, sampling, enhancement, holdout
) -> None:
    quotas = {"1": 10, "0": 10}
    settings = (quotas, metric, llm, columns, sampling, enhancement, holdout)
    openai_server.respond_with(half_valid_by_content)
    whole, whole_rejects, whole_stats, _ = run_generation(
        client_factory(openai_server, "whole.sqlite"), *settings
    )
    assert whole_stats["rounds"] >= 2 and whole["label"].value_counts().to_dict() == quotas
    sent = len(openai_server.requests)
    # run again on the same cache: every answer comes from it, no request is sent
    again, again_rejects, _, _ = run_generation(
        client_factory(openai_server, "whole.sqlite"), *settings
    )
    pd.testing.assert_frame_equal(whole, again)
    pd.testing.assert_frame_equal(whole_rejects, again_rejects)
    assert len(openai_server.requests) == sent

    # a run on a fresh cache that the provider stops after 25 answers (a key revoked mid-run)
    openai_server.reset()
    openai_server.respond_with(
        lambda request: (
            half_valid_by_content(request)
            if len(openai_server.requests) < 25
            else Reply.error(401, "key revoked")
        )
    )
    client = client_factory(openai_server, "killed.sqlite")
    with pytest.raises(ProviderRejected):
        run_generation(client, *settings)
    paid = {request.fingerprint for request in openai_server.requests if request.delivered}
    assert 25 <= len(paid) < sent  # requests already in flight may still be answered
    openai_server.respond_with(half_valid_by_content)
    resumed, resumed_rejects, resumed_stats, _ = run_generation(client, *settings)
    # the same calls, in the same rounds: what was paid before is not asked again
    assert openai_server.answered_twice() == []
    assert (
        len({request.fingerprint for request in openai_server.requests if request.delivered})
        == sent
    )
    pd.testing.assert_frame_equal(whole, resumed)
    pd.testing.assert_frame_equal(whole_rejects, resumed_rejects)
    assert resumed_stats["rounds"] == whole_stats["rounds"]


def test_judgeforge_run_reports_rounds_and_surplus(project_copy: Path, openai_server) -> None:
    # one chat request at a time, in the plan's order: the first 4 answers (class 0's round 1)
    # are not JSON, the rest are valid; class 0 then asks for 4 / (1/3) examples, capped by its
    # budget at 8 calls: 4 are kept, 4 set aside as surplus
    numbers = itertools.count()

    def respond(request: ReceivedRequest) -> Reply:
        if not request.path.endswith("/chat/completions"):
            return Reply()
        return INVALID if next(numbers) < 4 else example_answers(request)

    openai_server.respond_with(respond)
    example = next(path for path in EXAMPLES if path.stem == "binary_single_customer_complaint")
    run_yaml = loopback_run_yaml(
        example,
        openai_server.base_url,
        project_copy / "run.yaml",
        run_steps=["data_generation"],
        data_generation__generation__total_examples=8,
        data_generation__generation__label_distribution={"0": 0.5, "1": 0.5},
        data_generation__generation__max_attempts_per_example=3,
        data_generation__generation__async_config=ONE_AT_A_TIME,
    )
    result = subprocess.run(
        [sys.executable, "-m", "judgeforge", "run", "-c", str(run_yaml)],
        cwd=project_copy,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((project_copy / "data/08_reporting/generation_report.json").read_text())
    assert report["delivered_total"] == 8
    assert report["rounds"] == 2
    assert report["calls_per_class"] == {"0": 12, "1": 4}
    assert report["surplus_examples"] == 4
    assert report["rejected_total"] == 4 == report["rejected_by_reason"]["invalid_output"]
    rejects = pd.read_csv(project_copy / "data/02_intermediate/synthetic_rejects.csv")
    assert rejects["reason"].value_counts().to_dict() == {"invalid_output": 4, SURPLUS: 4}
    rows = pd.read_parquet(project_copy / "data/03_primary/synthetic_examples.parquet")
    assert rows["label"].astype(str).value_counts().to_dict() == {"0": 4, "1": 4}
