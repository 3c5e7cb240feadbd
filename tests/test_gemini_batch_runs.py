"""`async_config.batch` with provider gemini through the public door: one inline job, half the price, resume."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from judgeforge.llm.providers import GEMINI_BATCH_PRICE_FACTOR
from tests.conftest import copy_project
from tests.pipelines.labelling.test_run import COMPLAINT_EXAMPLE, generator_and_judge
from tests.run_yaml import loopback_run_yaml
from tests.support.commands import judgeforge, judgeforge_command, kill_once, run_report
from tests.support.openai_server import OpenAIServer

GENERATE = "/models/gemini-2.5-flash:generateContent"


def run_yaml(target: Path, *, batch: bool) -> Path:
    """The complaint example on gemini-2.5-flash, 6 rows one per call, embedded MiniLM embeddings."""
    return loopback_run_yaml(
        COMPLAINT_EXAMPLE,
        "unused",
        target,
        run_steps=["data_generation"],
        data_generation__llm={
            "provider": "gemini",
            "model": "gemini-2.5-flash",
            "embedding_model": "local",
        },
        data_generation__generation__total_examples=6,
        data_generation__generation__async_config={
            "max_concurrent_requests": 4,
            "max_retries": 1,
            "batch": batch,
        },
        data_generation__labelling={"enabled": False},
    )


def gemini_environment(server: OpenAIServer) -> dict[str, str]:
    """A key, and google-genai pointed at the loopback server by its own variable."""
    return {
        "GOOGLE_API_KEY": "AIza-batch-test-0123456789",
        "GOOGLE_GEMINI_BASE_URL": server.root_url,
        "HF_HUB_OFFLINE": "1",
    }


def judgeforge_run(
    project: Path, config: Path, server: OpenAIServer
) -> subprocess.CompletedProcess[str]:
    """Return the finished `judgeforge run -c config` in `project`, google-genai on `server`."""
    return judgeforge(project, "run", "-c", str(config), env=gemini_environment(server))


def test_a_gemini_batch_run_delivers_what_an_online_run_does_from_one_job_at_half_price(
    project_copy: Path, openai_server: OpenAIServer, tmp_path: Path
) -> None:
    openai_server.respond_with(generator_and_judge())
    online = judgeforge_run(
        project_copy, run_yaml(project_copy / "online.yaml", batch=False), openai_server
    )
    assert online.returncode == 0, online.stderr[-2000:]
    online_calls = [r for r in openai_server.requests if r.path.endswith(GENERATE)]
    assert online_calls and all(r.batch_id is None for r in online_calls)
    assert not openai_server.gemini_batches

    openai_server.reset()
    openai_server.respond_with(generator_and_judge())
    batch_project = copy_project(tmp_path / "batch-project")
    config = run_yaml(batch_project / "batch.yaml", batch=True)
    batched = judgeforge_run(batch_project, config, openai_server)
    assert batched.returncode == 0, batched.stderr[-2000:]

    carried = [r for r in openai_server.requests if r.path.endswith(GENERATE)]
    (job,) = openai_server.gemini_batches.values()
    # no online generateContent call: each went inside the one job
    assert [r.batch_id for r in carried] == [job["name"]] * len(online_calls)
    assert run_report(batch_project, "generation_report")["delivered_total"] == 6
    assert run_report(project_copy, "generation_report")["delivered_total"] == 6
    online_usage = run_report(project_copy, "generation_report")["usage"]
    batch_usage = run_report(batch_project, "generation_report")["usage"]
    assert batch_usage["succeeded"] == online_usage["succeeded"] > 0
    assert batch_usage["input_tokens"] == online_usage["input_tokens"]
    assert batch_usage["cost_usd"] > 0
    assert batch_usage["cost_usd"] == pytest.approx(
        online_usage["cost_usd"] * GEMINI_BATCH_PRICE_FACTOR, rel=1e-9
    )


def test_a_killed_gemini_batch_run_resumes_its_job_instead_of_submitting_again(
    project_copy: Path, openai_server: OpenAIServer
) -> None:
    openai_server.respond_with(generator_and_judge())
    openai_server.batch_hold = True  # the job waits: the run is polling when it is killed
    config = run_yaml(project_copy / "run.yaml", batch=True)
    command, environment = judgeforge_command(
        "run", "-c", str(config), env=gemini_environment(openai_server)
    )
    polled = kill_once(
        command,
        project_copy,
        lambda: any("/batches/" in r.path for r in openai_server.requests),
        env=environment,
    )
    assert polled, "the run never polled its job"
    assert len(openai_server.gemini_batches) == 1
    assert not [r for r in openai_server.requests if r.path.endswith(GENERATE)]

    openai_server.batch_hold = False
    resumed = judgeforge_run(project_copy, config, openai_server)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert len(openai_server.gemini_batches) == 1  # polled again, not submitted again
    creates = [r for r in openai_server.requests if r.path.endswith(":batchGenerateContent")]
    assert len(creates) == 1
    assert run_report(project_copy, "generation_report")["delivered_total"] == 6
    assert openai_server.answered_twice(GENERATE) == []
