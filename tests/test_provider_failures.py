"""Runs that cannot deliver fail through the public door (`judgeforge run -c`), keeping what was paid for."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

from tests.run_yaml import EXAMPLES, loopback_run_yaml
from tests.support.commands import judgeforge, kedro
from tests.support.loopback_parameters import write_loopback_parameters
from tests.support.openai_server import OpenAIServer, Reply, closed_port_url, example_answers

KEY = "sk-door-test-0123456789"


def judgeforge_run(project: Path, run_yaml: Path) -> subprocess.CompletedProcess[str]:
    """`judgeforge run -c run_yaml` in the project copy, with a key in the environment."""
    return judgeforge(project, "run", "-c", str(run_yaml), env={"OPENAI_API_KEY": KEY})


def run_yaml(
    base_url: str, target: Path, total: int = 4, concurrency: int = 4, **engine: object
) -> Path:
    """The first example, generating `total` rows one per call through `base_url`."""
    return loopback_run_yaml(
        EXAMPLES[0],
        base_url,
        target,
        run_steps=["data_generation"],
        data_generation__generation__total_examples=total,
        data_generation__generation__async_config={
            "max_concurrent_requests": concurrency,
            "max_retries": 1,
            **engine,
        },
    )


def cached_answers(project: Path) -> int:
    """Rows in the project's response cache (0 when there is none)."""
    files = list(project.glob("data/**/*.sqlite"))
    if not files:
        return 0
    with sqlite3.connect(files[0]) as db:
        return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]


def test_an_endpoint_nobody_listens_on_fails_the_run_with_one_line(
    project_copy: Path, tmp_path: Path
) -> None:
    result = judgeforge_run(
        project_copy,
        run_yaml(closed_port_url(), project_copy / "run.yaml", max_connection_failures=4),
    )
    assert result.returncode != 0
    assert (
        "openai: 4 connection attempts in a row failed (last: cannot connect to http://127.0.0.1:"
        in result.stderr
    )
    assert "completed successfully" not in result.stdout + result.stderr
    assert not (project_copy / "data/03_primary/synthetic_examples.parquet").exists()


def test_a_refused_key_stops_the_run_at_the_first_answer(
    project_copy: Path, openai_server: OpenAIServer, tmp_path: Path
) -> None:
    openai_server.refuse_status = 401
    result = judgeforge_run(
        project_copy, run_yaml(openai_server.base_url, project_copy / "run.yaml", total=40)
    )
    assert result.returncode != 0
    line = f"openai at {openai_server.base_url}/chat/completions answered HTTP 401"
    assert line in result.stderr and "the API key was refused" in result.stderr
    assert len(openai_server.requests) <= 4  # the ones already in flight, then nothing
    assert KEY not in result.stdout + result.stderr


def test_a_run_refused_midway_keeps_its_answers_and_the_rerun_sends_only_the_rest(
    project_copy: Path, openai_server: OpenAIServer, tmp_path: Path
) -> None:
    answered = 0

    def revoked_after_five(request) -> Reply:
        nonlocal answered
        answered += 1
        return example_answers(request) if answered <= 5 else Reply.error(401, "key revoked")

    openai_server.respond_with(revoked_after_five)
    config = run_yaml(openai_server.base_url, project_copy / "run.yaml", total=8, concurrency=1)
    assert judgeforge_run(project_copy, config).returncode != 0
    assert cached_answers(project_copy) == 5

    openai_server.reset()
    openai_server.respond_with(example_answers)
    result = judgeforge_run(project_copy, config)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(openai_server.requests) == 3
    report = json.loads((project_copy / "data/08_reporting/generation_report.json").read_text())
    assert report["delivered_total"] == 8 and report["usage"]["cache_hits"] == 5


def test_answers_in_flight_when_the_key_is_refused_are_cached_and_not_paid_twice(
    project_copy: Path, openai_server: OpenAIServer
) -> None:
    # 4 requests out at once: the first to arrive is refused (after 1 s), the others are
    # answered after 2 s, while the run is already ending; those answers are billed
    arrived = 0

    def first_refused(request) -> Reply:
        nonlocal arrived
        arrived += 1
        if arrived == 1:
            return Reply.slow(1.0, Reply.error(401, "key revoked"))
        return Reply.slow(2.0, example_answers(request))

    openai_server.respond_with(first_refused)
    config = run_yaml(openai_server.base_url, project_copy / "run.yaml", total=8, concurrency=4)
    assert judgeforge_run(project_copy, config).returncode != 0
    delivered = [r for r in openai_server.requests if r.delivered]
    assert delivered and cached_answers(project_copy) == len(delivered)

    openai_server.respond_with(example_answers)
    result = judgeforge_run(project_copy, config)
    assert result.returncode == 0, result.stderr[-3000:]
    assert openai_server.answered_twice() == []


def test_a_rate_limited_endpoint_is_held_and_everything_delivered(
    project_copy: Path, openai_server: OpenAIServer, tmp_path: Path
) -> None:
    openai_server.latency = 0.02
    openai_server.token_bucket(rate=20, capacity=2)
    openai_server.respond_with(example_answers)
    result = judgeforge_run(
        project_copy,
        run_yaml(openai_server.base_url, project_copy / "run.yaml", total=100, concurrency=16),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((project_copy / "data/08_reporting/generation_report.json").read_text())
    assert report["delivered_total"] == 100 and report["shortfall"]["short_by"] == 0
    statuses = [r.status for r in openai_server.requests]
    assert statuses.count(200) == 100 and statuses.count(429) < 100


def test_a_run_that_delivers_too_little_fails_after_writing_its_report(
    project_copy: Path, openai_server: OpenAIServer, tmp_path: Path
) -> None:
    openai_server.respond_with(lambda request: Reply.error(500, "model overloaded"))
    result = judgeforge_run(
        project_copy, run_yaml(openai_server.base_url, project_copy / "run.yaml", total=4)
    )
    assert result.returncode != 0
    assert "synthesis delivered 0 of 4 examples, short by 4" in result.stderr
    assert "HTTP 500: model overloaded" in result.stderr
    report = json.loads((project_copy / "data/08_reporting/generation_report.json").read_text())
    assert report["delivered_total"] == 0 and report["shortfall"]["within_tolerance"] is False
    assert "completed successfully" not in result.stdout + result.stderr


def kedro_run(project: Path, base_url: str, total: int) -> subprocess.CompletedProcess[str]:
    """`kedro run --pipelines ingestion,synthesis` in the project copy, generation through `base_url`."""
    write_loopback_parameters(
        project,
        base_url,
        generation={
            "total_examples": total,
            "examples_per_call": 1,
            "async_config": {"max_concurrent_requests": 2, "max_retries": 1},
        },
    )
    return kedro(project, "run", "--pipelines", "ingestion,synthesis", env={"OPENAI_API_KEY": KEY})


def test_the_kedro_door_stops_on_a_refused_key_and_on_a_shortfall(
    project_copy: Path, openai_server: OpenAIServer
) -> None:
    openai_server.refuse_status = 403
    refused = kedro_run(project_copy, openai_server.base_url, total=10)
    assert refused.returncode != 0
    said = " ".join(
        refused.stderr.split()
    )  # Kedro's traceback (until the one-line rework) wraps lines
    assert "answered HTTP 403" in said and "permission denied: the key lacks access" in said
    assert len(openai_server.requests) <= 2

    openai_server.refuse_status = None
    openai_server.reset()
    openai_server.respond_with(lambda request: Reply.text("not an example at all"))
    short = kedro_run(project_copy, openai_server.base_url, total=4)
    assert short.returncode != 0
    assert "synthesis delivered 0 of 4 examples" in " ".join(short.stderr.split())
    report = json.loads((project_copy / "data/08_reporting/generation_report.json").read_text())
    assert report["shortfall"] == {
        "short_by": 4,
        "max_shortfall_fraction": 0.1,
        "allowed": 0,
        "within_tolerance": False,
    }
    assert cached_answers(project_copy) == len(openai_server.requests)  # every paid answer kept


def test_a_judge_whose_requests_fail_stops_labelling_after_writing_its_labels(
    project_copy: Path, openai_server: OpenAIServer, tmp_path: Path
) -> None:
    def respond(request) -> Reply:
        schema = request.body.get("response_format", {}).get("json_schema", {}).get("name")
        return (
            Reply.error(400, "judge prompt rejected")
            if schema == "judge_label"
            else example_answers(request)
        )

    openai_server.respond_with(respond)
    config = loopback_run_yaml(
        next(path for path in EXAMPLES if path.stem == "binary_single_customer_complaint"),
        openai_server.base_url,
        project_copy / "run.yaml",
        run_steps=["data_generation"],
        data_generation__metric__llmaj_source_prompt="Is this customer message a complaint?\nMessage: {text}",
        data_generation__labelling={"enabled": True, "invalid_answer_retries": 0},
    )
    result = judgeforge_run(project_copy, config)
    assert result.returncode != 0
    assert (
        "the judge could not label" in result.stderr
        and "HTTP 400: judge prompt rejected" in result.stderr
    )
    report = json.loads((project_copy / "data/08_reporting/labelling_report.json").read_text())
    assert report["unlabelled_by_failed_requests"]["within_tolerance"] is False
    assert (project_copy / "data/02_intermediate/judge_labels.parquet").exists()
    assert cached_answers(project_copy) == 4  # the generator's answers, paid and kept
