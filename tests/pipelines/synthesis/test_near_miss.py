"""Near-miss pairs: planned between neighbouring classes with exact quotas, kept whole, one pair id per pair."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import pandas as pd

from judgeforge.config.data_generation import MetricConfig
from judgeforge.config.diversity import DiversityConfig
from judgeforge.pipelines.synthesis.plan import (
    PAIR_CLASS,
    PLAN_CALL_ID,
    near_miss_pairs,
    planned_examples,
)
from tests.pipelines.synthesis.test_nodes import run_generation
from tests.pipelines.synthesis.test_plan import plan_for
from tests.run_yaml import EXAMPLES, loopback_run_yaml
from tests.support.commands import judgeforge
from tests.support.openai_server import Reply, example_answers

PAIR_ASK = "differ as little as possible"


def pair_answers():
    """Return a responder: a pair call gets two texts one word apart, any other call one example."""
    numbers = itertools.count()

    def respond(request) -> Reply:
        if PAIR_ASK not in request.last_user_message:
            return example_answers(request)
        n = next(numbers)
        return Reply.json(
            {
                "examples": [
                    {"text": f"Order {n} arrived broken and I want a refund"},
                    {"text": f"Order {n} arrived fine and I want a receipt"},
                ]
            }
        )

    return respond


def test_pairs_join_neighbouring_classes_and_quotas_stay_exact(metric, llm, enhancement) -> None:
    three = MetricConfig(
        name="intent",
        description="What does the customer want?",
        type="multi-class",
        input_format="single",
        class_labels=[
            {"name": n, "label": n, "rubric": f"about {n}"}
            for n in ("billing", "shipping", "returns")
        ],
    )
    assert near_miss_pairs(
        {"billing": 10, "shipping": 10, "returns": 10}, three.class_labels, 0.4
    ) == {
        ("billing", "shipping"): 2,
        ("shipping", "returns"): 2,
    }
    quotas = {"1": 9, "0": 6}
    plan = plan_for({"near_miss_share": 0.5}, quotas, metric, llm, enhancement)
    pairs = plan[plan[PAIR_CLASS] != ""]
    assert len(pairs) == 3  # half of the smaller quota, floored
    assert set(pairs["class"]) == {"1"} and set(pairs[PAIR_CLASS]) == {"0"}
    assert (pairs["examples"] == 2).all()
    assert planned_examples(plan) == quotas
    shown = pairs["context_ids"].iloc[0]
    labels = enhancement.set_index("row_id")["label"]
    assert [labels[i] for i in shown] == ["1", "0", "1", "0"]  # alternating, as pairs are shown
    assert plan_for({}, quotas, metric, llm, enhancement).columns.tolist() == [
        c for c in plan.columns if c != PAIR_CLASS
    ]


def test_a_pair_is_kept_whole_or_asked_again(
    openai_server, client_factory, metric, llm, columns, sampling, enhancement, holdout
) -> None:
    answers = iter(
        [
            # one example only: not a pair
            {"examples": [{"text": "Order came broken, refund me"}]},
            # the second copies a holdout row: both are set aside
            {"examples": [{"text": "Order came broken, refund me"}, {"text": "Great prices"}]},
            {
                "examples": [
                    {"text": "Order came broken, refund me"},
                    {"text": "Order came fine, thanks"},
                ]
            },
        ]
    )
    openai_server.respond_with(
        lambda request: (
            Reply.json(next(answers))
            if PAIR_ASK in request.last_user_message
            else example_answers(request)
        )
    )
    quotas = {"1": 2, "0": 2}
    synthetic, rejects, _, _ = run_generation(
        client_factory(openai_server),
        quotas,
        metric,
        llm,
        columns,
        sampling,
        enhancement,
        holdout,
        DiversityConfig(near_miss_share=0.5),
        max_attempts_per_example=3,
    )
    assert rejects["reason"].tolist() == ["invalid_output", "pair_partner_rejected", "holdout_leak"]
    paired = synthetic[synthetic["pair_id"] != ""]
    assert paired["label"].tolist() == ["1", "0"]
    assert paired["pair_id"].tolist() == ["1~0/p0/r1/r2"] * 2  # the pair call asked a third time
    assert synthetic["label"].value_counts().to_dict() == quotas


def test_judgeforge_run_writes_pairs_with_one_id_and_opposite_labels(
    project_copy: Path, openai_server, tmp_path: Path
) -> None:
    openai_server.respond_with(pair_answers())
    run_yaml = loopback_run_yaml(
        EXAMPLES[1],
        openai_server.base_url,
        project_copy / "run.yaml",
        run_steps=["data_generation"],
        data_generation__generation__total_examples=10,
        data_generation__generation__label_distribution={"0": 0.5, "1": 0.5},
        data_generation__diversity={"near_miss_share": 0.6},
    )
    result = judgeforge(project_copy, "run", "-c", str(run_yaml))
    assert result.returncode == 0, result.stderr[-3000:]
    rows = pd.read_parquet(project_copy / "data/03_primary/synthetic_examples.parquet")
    pairs = rows[rows["pair_id"] != ""].groupby("pair_id")["label"].agg(list)
    assert len(pairs) == 3
    assert all(sorted(map(str, labels)) == ["0", "1"] for labels in pairs)
    report = json.loads((project_copy / "data/08_reporting/generation_report.json").read_text())
    assert report["delivered_total"] == 10
    assert rows["label"].astype(str).value_counts().to_dict() == {"0": 5, "1": 5}


def test_each_call_of_a_run_has_its_own_id_when_both_classes_of_a_pair_follow_it_up(
    openai_server, client_factory, metric, llm, columns, sampling, enhancement, holdout
) -> None:
    # round 1: one pair call (1~0/p0) and one single call per class, all unreadable. Round 2
    # asks the pair again and three single calls per class; each class copies the rows of its
    # calls that fell short, the pair's row among them, at the same place in both lists
    openai_server.respond_with(lambda request: Reply.text("Sorry, I cannot write that."))
    settings = (
        {"1": 2, "0": 2},
        metric,
        llm,
        columns,
        sampling,
        enhancement,
        holdout,
        DiversityConfig(near_miss_share=0.5),
    )
    overrides = {"max_attempts_per_example": 3, "debug_save_prompts": True}
    run = run_generation(client_factory(openai_server), *settings, **overrides)
    calls = [record["call_id"] for record in run[3]]
    assert len(calls) == len(openai_server.requests)
    assert len(set(calls)) == len(calls), sorted(calls)
    # a follow-up copying the pair's row for its second class names that class
    assert {"1~0/p0/r1", "1~0/p0/r1/1", "1~0/p0/0/r1/1"} <= set(calls)
    seeds = {request.body["seed"] for request in openai_server.requests}
    assert len(seeds) == len(calls)
    # run again on the same cache: every call is answered from it
    again = run_generation(client_factory(openai_server), *settings, **overrides)
    assert len(openai_server.requests) == len(calls)
    pd.testing.assert_frame_equal(run[1], again[1])


def test_judgeforge_run_gives_each_class_of_a_pair_its_own_follow_up_calls(
    project_copy: Path, openai_server
) -> None:
    # 8 examples, half in pairs: 2 pair calls and 2 single calls per class, the whole first
    # round answered with prose (delivering nothing), every later call properly. The second round asks both pairs again and, for each class,
    # copies the rows of its calls that fell short, the pairs' rows among them, at the same place
    # in both classes' lists: each copy must still be a call of its own
    first_round = 6
    answered = itertools.count()
    later = pair_answers()
    openai_server.respond_with(
        lambda request: (
            Reply.text("Sorry, I cannot write that.")
            if next(answered) < first_round
            else later(request)
        )
    )
    run_yaml = loopback_run_yaml(
        next(path for path in EXAMPLES if path.stem == "binary_single_customer_complaint"),
        openai_server.base_url,
        project_copy / "run.yaml",
        run_steps=["data_generation"],
        data_generation__generation__total_examples=8,
        data_generation__generation__label_distribution={"0": 0.5, "1": 0.5},
        data_generation__generation__max_attempts_per_example=3,
        data_generation__generation__debug_save_prompts=True,
        data_generation__diversity={"near_miss_share": 0.5},
    )
    result = judgeforge(project_copy, "run", "-c", str(run_yaml))
    assert result.returncode == 0, result.stderr[-3000:]

    plan = pd.read_parquet(project_copy / "data/02_intermediate/generation_plan.parquet")
    assert len(plan) == first_round
    calls = json.loads((project_copy / "data/08_reporting/generation_debug_log.json").read_text())
    # the setup reaches the case: single calls of both classes copying a pair's row
    pairs = plan.loc[plan[PAIR_CLASS] != "", PLAN_CALL_ID]
    copies = [
        call
        for call in calls
        if any(call["call_id"].startswith(f"{pair}/") for pair in pairs)
        and PAIR_ASK not in call["messages"][-1]["content"]
    ]
    assert {call["class"] for call in copies} == {"complaint", "not_complaint"}
    ids = Counter(call["call_id"] for call in calls)
    seeds = Counter(request.body["seed"] for request in openai_server.requests)
    assert ids.total() == seeds.total() == len(calls)
    assert [call_id for call_id, n in ids.items() if n > 1] == []
    assert [seed for seed, n in seeds.items() if n > 1] == []
    rows = pd.read_parquet(project_copy / "data/03_primary/synthetic_examples.parquet")
    assert rows["label"].astype(str).value_counts().to_dict() == {"0": 4, "1": 4}
    report = json.loads((project_copy / "data/08_reporting/generation_report.json").read_text())
    assert report["delivered_total"] == 8
    # each unreadable first-round answer, a pair's too, is one reject
    rejects = pd.read_csv(project_copy / "data/02_intermediate/synthetic_rejects.csv")
    unreadable = rejects.loc[rejects["reason"] == "invalid_output", "call_id"]
    assert sorted(unreadable) == sorted(plan[PLAN_CALL_ID])
