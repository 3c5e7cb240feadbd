"""Sharded synthesis (generation.shards): through `judgeforge run` and `kedro run` in a copy of the project, and the merge's parts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from judgeforge.config.data_generation import GenerationConfig
from judgeforge.pipeline_registry import register_pipelines, shape_pipelines
from judgeforge.pipelines.synthesis.generation import RejectReason, fingerprint
from judgeforge.pipelines.synthesis.nodes import SynthesisError
from judgeforge.pipelines.synthesis.plan import PAIR_CLASS
from judgeforge.pipelines.synthesis.shards import (
    drop_repeats,
    plan_digest,
    refill_plan,
    require_current_shards,
    split_generation_plan,
)
from judgeforge.schema import REJECT_REASON
from tests.pipelines.synthesis.test_near_miss import PAIR_ASK
from tests.run_yaml import EXAMPLES, loopback_run_yaml
from tests.support.commands import judgeforge, kedro
from tests.support.openai_server import OpenAIServer, ReceivedRequest, Reply, example_answers

EXAMPLE = next(path for path in EXAMPLES if path.stem == "binary_single_customer_complaint")
SHARDS = 3
TOTAL = 12
SHARD_FOLDER = "data/02_intermediate/synthesis_shards"
SHARED_TEXT = "A message that two shards both wrote, word for word, for the test"


def shard_seeds(project: Path, shard: int) -> list[int]:
    """Return the seeds of a shard's first-round calls, from the plan part the run wrote for it."""
    plan = pd.read_parquet(project / SHARD_FOLDER / f"shard_{shard}" / "generation_plan.parquet")
    return [int(seed) for seed in plan["seed"]]


def answer_with(text: str) -> Callable[[ReceivedRequest], Reply]:
    """Return a responder that fills every field the prompt asks for with `text`."""

    def respond(request: ReceivedRequest) -> Reply:
        fields = json.loads(example_answers(request).body["content"])["examples"][0]
        return Reply.json({"examples": [dict.fromkeys(fields, text)]})

    return respond


def sharded_run_yaml(server: OpenAIServer, target: Path, **overrides: Any) -> Path:
    """Write a run YAML generating TOTAL examples in SHARDS shards through the loopback server (`overrides` as loopback_run_yaml's)."""
    return loopback_run_yaml(
        EXAMPLE,
        server.base_url,
        target,
        run_steps=["data_generation"],
        data_generation__generation__total_examples=TOTAL,
        data_generation__generation__shards=SHARDS,
        **overrides,
    )


def synthetic_rows(project: Path) -> pd.DataFrame:
    return pd.read_parquet(project / "data/03_primary/synthetic_examples.parquet")


def assert_exact_and_unique(project: Path) -> dict:
    """Check the merged rows: every class quota met exactly, no text twice; return the report."""
    quotas = json.loads((project / "data/02_intermediate/class_quotas.json").read_text())
    rows = synthetic_rows(project)
    assert rows["label"].astype(str).value_counts().to_dict() == {
        k: v for k, v in quotas.items() if v
    }
    assert len(rows) == TOTAL
    assert not rows["text"].duplicated().any()
    assert not rows["row_id"].duplicated().any()
    return json.loads((project / "data/08_reporting/generation_report.json").read_text())


def test_judgeforge_run_with_three_shards_drops_what_two_shards_both_made_and_refills(
    project_copy: Path, openai_server: OpenAIServer, tmp_path: Path
) -> None:
    # the first call of shard 1 and the first call of shard 2 get the same answer
    shared: list[int] = []

    def respond(request: ReceivedRequest) -> Reply:
        if not shared:
            shared.extend([shard_seeds(project_copy, 1)[0], shard_seeds(project_copy, 2)[0]])
        if request.body.get("seed") in shared:
            return answer_with(SHARED_TEXT)(request)
        return example_answers(request)

    openai_server.respond_with(respond)
    run_yaml = sharded_run_yaml(openai_server, project_copy / "run.yaml")
    result = judgeforge(project_copy, "run", "-c", str(run_yaml))
    assert result.returncode == 0, result.stderr[-3000:]

    report = assert_exact_and_unique(project_copy)
    assert (synthetic_rows(project_copy)["text"] == SHARED_TEXT).sum() == 1
    # each shard wrote its own datasets, and the shards' parts are the whole plan
    plan = pd.read_parquet(project_copy / "data/02_intermediate/generation_plan.parquet")
    parts = [
        pd.read_parquet(project_copy / SHARD_FOLDER / f"shard_{i}" / "generation_plan.parquet")
        for i in range(1, SHARDS + 1)
    ]
    assert sorted(pd.concat(parts)["plan_call_id"]) == sorted(plan["plan_call_id"])
    shard_rows = [
        pd.read_parquet(project_copy / SHARD_FOLDER / f"shard_{i}" / "synthetic_examples.parquet")
        for i in range(1, SHARDS + 1)
    ]
    assert sum(len(rows) for rows in shard_rows) == TOTAL  # one of them is the duplicate
    assert [s["shard"] for s in report["shards"]] == ["shard_1", "shard_2", "shard_3"]
    assert report["dropped_at_merge"] == {"duplicate": 1, "holdout_leak": 0}
    assert report["refill_calls"] == 1
    assert report["rejected_by_reason"]["duplicate"] == 1
    assert report["calls_per_class"] and sum(report["calls_per_class"].values()) == len(plan) + 1
    assert report["shortfall"]["short_by"] == 0
    assert openai_server.answered_twice() == []

    # a second run sends nothing: every shard and the refill come from the cache
    sent = len(openai_server.requests)
    again = judgeforge(project_copy, "run", "-c", str(run_yaml))
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(openai_server.requests) == sent
    assert_exact_and_unique(project_copy)


def test_a_refill_asks_a_pair_row_again_for_the_class_that_lacks_examples_only(
    project_copy: Path, openai_server: OpenAIServer
) -> None:
    # every call is a near-miss pair; the first pairs of shards 1 and 2 write the same complaint,
    # so the merge drops one and only the complaint class lacks an example
    shared: list[int] = []
    numbers = iter(range(1000))

    def respond(request: ReceivedRequest) -> Reply:
        if not shared:
            shared.extend([shard_seeds(project_copy, 1)[0], shard_seeds(project_copy, 2)[0]])
        if PAIR_ASK not in request.last_user_message:
            return example_answers(request)
        n = next(numbers)
        complaint = SHARED_TEXT if request.body.get("seed") in shared else f"Parcel {n} came torn"
        return Reply.json(
            {"examples": [{"text": complaint}, {"text": f"Parcel {n} came on time, thanks"}]}
        )

    openai_server.respond_with(respond)
    run_yaml = sharded_run_yaml(
        openai_server,
        project_copy / "run.yaml",
        data_generation__generation__label_distribution={"0": 0.5, "1": 0.5},
        data_generation__diversity={"near_miss_share": 1.0},
    )
    result = judgeforge(project_copy, "run", "-c", str(run_yaml))
    assert result.returncode == 0, result.stderr[-3000:]

    plan = pd.read_parquet(project_copy / "data/02_intermediate/generation_plan.parquet")
    assert (plan[PAIR_CLASS] != "").all()  # the setup: a refill can only copy a pair's row
    report = assert_exact_and_unique(project_copy)
    assert report["dropped_at_merge"]["duplicate"] == 1
    assert report["refill_calls"] == 1
    refill = openai_server.requests[-1]
    assert PAIR_ASK not in refill.last_user_message
    assert "complaint" in refill.last_user_message
    assert len(openai_server.requests) == len(plan) + 1


def test_a_failed_sharded_run_resends_only_the_unfinished_shard(
    project_copy: Path, openai_server: OpenAIServer, tmp_path: Path
) -> None:
    run_yaml = yaml.safe_load(
        sharded_run_yaml(openai_server, project_copy / "run.yaml").read_text()
    )
    env = project_copy / "conf" / "loopback"
    env.mkdir()
    (env / "parameters_loopback.yml").write_text(
        yaml.safe_dump({"data_generation": run_yaml["data_generation"]})
    )
    # shard 2 meets an outage: every call that is not one of shards 1 and 3 fails
    healthy: set[int] = set()
    outage = True

    def respond(request: ReceivedRequest) -> Reply:
        if not healthy:
            healthy.update(shard_seeds(project_copy, 1) + shard_seeds(project_copy, 3))
        if outage and request.body.get("seed") not in healthy:
            return Reply.error(400, "scripted outage")
        return example_answers(request)

    openai_server.respond_with(respond)
    command = ("run", "--pipelines", "ingestion+synthesis", "--env", "loopback")
    # the shards run at once in threads, then (the resumed run) in processes
    first = kedro(project_copy, *command, "--runner", "ThreadRunner")
    assert first.returncode != 0
    assert "Error: synthesis shard_2 delivered 0 of 4 examples" in first.stderr
    assert "scripted outage" in first.stderr
    shard_files = {
        i: project_copy / SHARD_FOLDER / f"shard_{i}" / "synthetic_examples.parquet"
        for i in (1, 2, 3)
    }
    assert shard_files[1].is_file() and not shard_files[2].exists()
    answered = {r.body["seed"] for r in openai_server.requests if r.delivered}
    assert set(shard_seeds(project_copy, 1)) <= answered

    outage = False
    sent = len(openai_server.requests)
    second = kedro(project_copy, *command, "--runner", "ParallelRunner")
    assert second.returncode == 0, second.stderr[-3000:]
    seeds = [r.body.get("seed") for r in openai_server.requests[sent:]]
    assert not answered & set(
        seeds
    )  # nothing answered before was asked again: shard 1 sent nothing
    assert set(shard_seeds(project_copy, 2)) <= set(seeds)
    assert_exact_and_unique(project_copy)
    assert openai_server.answered_twice() == []


def test_kedro_viz_draws_each_shard_as_a_box_inside_synthesis(project_copy: Path) -> None:
    (project_copy / "conf/local/parameters_shards.yml").write_text(
        yaml.safe_dump({"data_generation": {"generation": {"shards": SHARDS}}})
    )
    result = kedro(project_copy, "viz", "build")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    drawn = json.loads((project_copy / "build/api/main").read_text())
    boxes = {f"synthesis.shard_{i}" for i in range(1, SHARDS + 1)}
    assert boxes <= set(drawn["modular_pipelines"])
    in_synthesis = {child["id"] for child in drawn["modular_pipelines"]["synthesis"]["children"]}
    assert boxes <= in_synthesis
    tasks = [node for node in drawn["nodes"] if node["type"] == "task"]
    assert sum(node["name"] == "generate_shard" for node in tasks) == SHARDS
    assert {"split_generation_plan", "merge_shards"} <= {node["name"] for node in tasks}


def test_the_registry_builds_as_many_shard_nodes_as_the_run_config_asks(raw_config) -> None:
    from judgeforge.config import validate_run_config

    config = validate_run_config(raw_config)
    try:
        config.data_generation.generation.shards = 4
        shape_pipelines(config)
        nodes = {node.name for node in register_pipelines()["synthesis"].nodes}
        assert {f"synthesis.shard_{i}.generate_shard" for i in range(1, 5)} <= nodes
        assert {"synthesis.split_generation_plan", "synthesis.merge_shards"} <= nodes
        assert "synthesis.generate_synthetic_examples" not in nodes
    finally:
        config.data_generation.generation.shards = 1
        shape_pipelines(config)
    nodes = {node.name for node in register_pipelines()["synthesis"].nodes}
    assert "synthesis.generate_synthetic_examples" in nodes
    assert not any("shard" in name for name in nodes)


def plan_of(classes: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "plan_call_id": [f"{key}/c{i}" for i, key in enumerate(classes)],
            "class": classes,
            "examples": [2] * len(classes),
            "seed": range(len(classes)),
        }
    )


def test_split_deals_each_class_over_the_shards_and_keeps_every_call() -> None:
    plan = plan_of(["1"] * 5 + ["0"] * 4)
    parts = split_generation_plan(plan, GenerationConfig(shards=3))
    assert [len(part) for part in parts] == [3, 3, 3]
    assert [part["class"].value_counts().to_dict() for part in parts] == [
        {"1": 2, "0": 1},
        {"1": 2, "0": 1},
        {"1": 1, "0": 2},
    ]
    assert sorted(pd.concat(parts)["plan_call_id"]) == sorted(plan["plan_call_id"])


def test_merge_refuses_shard_files_made_for_another_plan() -> None:
    plan = plan_of(["1"] * 4)
    generation = GenerationConfig(shards=2)
    current = [
        {"plan_digest": plan_digest(part)} for part in split_generation_plan(plan, generation)
    ]
    require_current_shards(plan, generation, current)
    with pytest.raises(
        SynthesisError, match="the datasets of shard_2 were made for another generation plan"
    ):
        require_current_shards(plan, generation, [current[0], {"plan_digest": "stale"}])


def test_merge_drops_a_text_an_earlier_shard_made_and_a_holdout_text() -> None:
    columns = ["row_id", "text", "label", "call_id", "generator"]
    first = pd.DataFrame(
        [["syn-0", "Same words", "1", "1/c0", "g"], ["syn-1", "Only here", "0", "0/c0", "g"]],
        columns=columns,
    )
    second = pd.DataFrame(
        [["syn-0", "same   WORDS", "1", "1/c1", "g"], ["syn-1", "A holdout row", "1", "1/c2", "g"]],
        columns=columns,
    )
    reject_columns = [
        "call_id",
        "class",
        REJECT_REASON,
        "detail",
        "text",
        "raw_answer",
        "generator",
    ]
    holdout = {fingerprint({"text": "A holdout row"}, ["text"])}
    kept, dropped, seen = drop_repeats(
        [first, second], reject_columns, holdout, ["text"], "label", {"1": "complaint"}
    )
    assert kept["text"].tolist() == ["Same words", "Only here"]
    assert dropped[REJECT_REASON].tolist() == [
        RejectReason.DUPLICATE.value,
        RejectReason.HOLDOUT_LEAK.value,
    ]
    assert dropped["class"].tolist() == ["complaint", "complaint"]
    assert "shard_1" in dropped["detail"].iloc[0]
    assert len(seen) == 2


def test_refill_asks_for_what_is_missing_within_the_budget_left() -> None:
    plan = plan_of(["1", "1", "0"])
    refill = refill_plan(plan, {"1": 3, "0": 0}, {"1": 5, "0": 5}, per_call=2)
    assert refill["class"].tolist() == ["1", "1"]
    assert refill["examples"].tolist() == [2, 1]
    assert refill["plan_call_id"].tolist() == ["1/c0", "1/c1"]
    assert len(refill_plan(plan, {"1": 3}, {"1": 1}, per_call=2)) == 1
    assert len(refill_plan(plan, {"1": 3}, {"1": 0}, per_call=2)) == 0


def test_refill_copies_a_pair_row_made_single_for_the_class_that_lacks_examples() -> None:
    plan = plan_of(["1", "1"]).assign(
        **{PAIR_CLASS: ["0", ""], "context_ids": [["a", "b", "c", "d"], ["e", "f"]]}
    )
    for_second = refill_plan(plan, {"1": 0, "0": 1}, {"1": 5, "0": 5}, per_call=1)
    assert for_second[["class", PAIR_CLASS, "examples"]].values.tolist() == [["0", "", 1]]
    assert list(for_second["context_ids"].iloc[0]) == ["b", "d"]  # the pair's shots of class 0
    for_first = refill_plan(plan, {"1": 2, "0": 0}, {"1": 5, "0": 5}, per_call=1)
    assert for_first[["class", PAIR_CLASS]].values.tolist() == [["1", ""], ["1", ""]]
    assert [list(ids) for ids in for_first["context_ids"]] == [["a", "c"], ["e", "f"]]


@pytest.mark.parametrize("shards", [0, -1])
def test_shards_must_be_at_least_one(shards: int) -> None:
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        GenerationConfig(shards=shards)


@pytest.fixture
def one_shard_afterwards(raw_config) -> Iterator[None]:
    """Give the registered pipelines their one-shard shape back after a test that shapes them in-process."""
    from judgeforge.config import validate_run_config

    yield
    shape_pipelines(validate_run_config(raw_config))


def test_validate_checks_the_pipeline_shaped_as_the_run_shapes_it(
    project_copy: Path,
    openai_server: OpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
    one_shard_afterwards: None,
) -> None:
    from judgeforge import preflight
    from judgeforge.command_line import main

    checked = []
    real_problems = preflight.validate_problems

    def recorded(config, pipeline, *rest):
        checked.append({node.name for node in pipeline.nodes})
        return real_problems(config, pipeline, *rest)

    monkeypatch.setattr(preflight, "validate_problems", recorded)
    run_yaml = sharded_run_yaml(openai_server, project_copy / "run.yaml")

    assert main(["validate", "-c", str(run_yaml), "--project-path", str(project_copy)]) == 0
    [names] = checked
    assert {f"synthesis.shard_{i}.generate_shard" for i in range(1, SHARDS + 1)} <= names
    assert "synthesis.merge_shards" in names and "generate_synthetic_examples" not in names
    assert openai_server.requests == []
