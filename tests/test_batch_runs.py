"""`async_config.batch` through the public door: a batch run matches an online one at the batch price, and resumes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from judgeforge.llm.providers import OPENAI_BATCH_PRICE_FACTOR
from tests.conftest import copy_project
from tests.pipelines.labelling.test_run import COMPLAINT_EXAMPLE, generator_and_judge
from tests.run_yaml import loopback_run_yaml
from tests.support.commands import judgeforge, judgeforge_command, kill_once, run_report
from tests.support.openai_server import OpenAIServer, ReceivedRequest, Reply

KEY = "sk-batch-test-0123456789"
CHAT = "/v1/chat/completions"
JUDGE_LABELS = "data/02_intermediate/judge_labels.parquet"
KEY_ENV = {"OPENAI_API_KEY": KEY}


def run_yaml(base_url: str, target: Path, *, batch: bool, labelling: bool) -> Path:
    """The complaint example on a priced model, 6 rows one per call, the judge on or off."""
    return loopback_run_yaml(
        COMPLAINT_EXAMPLE,
        base_url,
        target,
        run_steps=["data_generation"],
        data_generation__llm={
            "provider": "openai",
            "model": "gpt-4o-mini",
            "embedding_model": "text-embedding-3-small",
            "base_url": base_url,
        },
        data_generation__generation__total_examples=6,
        data_generation__generation__async_config={
            "max_concurrent_requests": 4,
            "max_retries": 1,
            "batch": batch,
        },
        data_generation__metric__llmaj_source_prompt="Is this customer message a complaint?\nMessage: {text}",
        data_generation__labelling={"enabled": labelling, "disagreement_policy": "relabel"},
    )


def judgeforge_run(project: Path, config: Path):
    """Return the finished `judgeforge run -c config` in `project`, with the test key."""
    return judgeforge(project, "run", "-c", str(config), env=KEY_ENV)


def judge_rejects_some_first_answers():
    """The generator-and-judge responder, whose judge answers a third of the first asks off-scale."""
    respond = generator_and_judge()

    def answer(request: ReceivedRequest) -> Reply:
        schema = request.body.get("response_format", {}).get("json_schema", {}).get("name")
        message = request.last_user_message
        first_ask = "(Attempt 2" not in message
        if (
            schema == "judge_label"
            and first_ask
            and hashlib.sha256(message.encode()).digest()[0] % 3 == 0
        ):
            return Reply.json({"label": "maybe", "rationale": "unsure"})
        return respond(request)

    return answer


def batch_inputs(server: OpenAIServer) -> list[list[dict]]:
    """The request lines of every batch the server was asked to create, in creation order."""
    return [
        [json.loads(line) for line in server.files[batch["input_file_id"]][2].decode().splitlines()]
        for batch in server.batches.values()
    ]


def test_a_batch_run_delivers_what_an_online_run_does_at_the_batch_price(
    project_copy: Path, openai_server: OpenAIServer, tmp_path: Path
) -> None:
    openai_server.respond_with(judge_rejects_some_first_answers())
    online = judgeforge_run(
        project_copy,
        run_yaml(openai_server.base_url, project_copy / "online.yaml", batch=False, labelling=True),
    )
    assert online.returncode == 0, online.stderr[-2000:]
    online_chat = [r for r in openai_server.requests if r.path == CHAT]
    assert online_chat and all(r.batch_id is None for r in online_chat)
    assert not openai_server.batches

    openai_server.reset()
    openai_server.respond_with(judge_rejects_some_first_answers())
    batch_project = copy_project(tmp_path / "batch-project")
    config = run_yaml(
        openai_server.base_url, batch_project / "batch.yaml", batch=True, labelling=True
    )
    batched = judgeforge_run(batch_project, config)
    assert batched.returncode == 0, batched.stderr[-2000:]

    # the same requests, each carried by a batch, none sent online
    carried = [r for r in openai_server.requests if r.path == CHAT]
    assert carried and all(r.batch_id is not None for r in carried)
    assert len(carried) == len(online_chat)
    # generation, the judge's first asks, then a second batch of only the rejected ones
    judge_batches = [
        lines
        for lines in batch_inputs(openai_server)
        if "judge_label" in json.dumps(lines[0]["body"])
    ]
    assert len(judge_batches) == 2
    assert 0 < len(judge_batches[1]) < len(judge_batches[0])
    assert all("(Attempt 2" in line["body"]["messages"][-1]["content"] for line in judge_batches[1])

    # the same data, paid at the batch price
    assert run_report(batch_project, "generation_report")["delivered_total"] == 6
    assert run_report(project_copy, "generation_report")["delivered_total"] == 6
    online_labels = pd.read_parquet(project_copy / JUDGE_LABELS)
    batch_labels = pd.read_parquet(batch_project / JUDGE_LABELS)
    assert len(batch_labels) == len(online_labels)
    assert set(batch_labels["status"]) == set(online_labels["status"]) == {"ok"}
    for stage in ("generation_report", "labelling_report"):
        online_usage, batch_usage = (
            run_report(project_copy, stage)["usage"],
            run_report(batch_project, stage)["usage"],
        )
        assert batch_usage["succeeded"] == online_usage["succeeded"] > 0
        assert batch_usage["input_tokens"] == online_usage["input_tokens"]
        assert batch_usage["cost_usd"] == pytest.approx(
            online_usage["cost_usd"] * OPENAI_BATCH_PRICE_FACTOR, rel=1e-9
        )
        assert batch_usage["cost_usd"] > 0

    # a rerun pays nothing: every answer is in the cache
    openai_server.reset()
    again = judgeforge_run(batch_project, config)
    assert again.returncode == 0, again.stderr[-2000:]
    assert [r.path for r in openai_server.requests if r.path == CHAT or "batches" in r.path] == []


def test_a_killed_batch_run_resumes_its_batch_instead_of_submitting_again(
    project_copy: Path, openai_server: OpenAIServer, tmp_path: Path
) -> None:
    openai_server.respond_with(generator_and_judge())
    openai_server.batch_hold = True  # the batch waits: the run is polling when it is killed
    config = run_yaml(
        openai_server.base_url, project_copy / "run.yaml", batch=True, labelling=False
    )
    command, environment = judgeforge_command("run", "-c", str(config), env=KEY_ENV)
    polled = kill_once(
        command,
        project_copy,
        lambda: any(r.path.startswith("/v1/batches/") for r in openai_server.requests),
        env=environment,
    )
    assert polled, "the run never polled its batch"
    assert len(openai_server.batches) == 1
    assert not [r for r in openai_server.requests if r.path == CHAT]  # nothing answered yet

    openai_server.batch_hold = False
    resumed = judgeforge_run(project_copy, config)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert len(openai_server.batches) == 1  # polled again, not submitted again
    creates = [r for r in openai_server.requests if r.path == "/v1/batches"]
    assert len(creates) == 1
    assert run_report(project_copy, "generation_report")["shortfall"]["within_tolerance"] is True
    assert openai_server.answered_twice(CHAT) == []


def test_an_expired_batch_is_one_line_and_keeps_the_answers_it_returned(
    project_copy: Path, openai_server: OpenAIServer, tmp_path: Path
) -> None:
    openai_server.respond_with(generator_and_judge())
    openai_server.batch_outcome = "expired"
    config = run_yaml(
        openai_server.base_url, project_copy / "run.yaml", batch=True, labelling=False
    )
    expired = judgeforge_run(project_copy, config)
    assert expired.returncode != 0
    (batch_id,) = openai_server.batches
    line = f"openai batch {batch_id} expired: 3 of 6 requests answered and cached"
    assert line in expired.stderr
    assert "Traceback" not in expired.stderr

    openai_server.batch_outcome = "completed"
    rerun = judgeforge_run(project_copy, config)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    second = batch_inputs(openai_server)[1]
    assert len(second) == 3  # only the requests the expired batch did not answer
