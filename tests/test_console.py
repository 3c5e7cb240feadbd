"""The console of a run: progress lines when stdout is not a terminal, quiet Kedro logs, a summary."""

from __future__ import annotations

import itertools
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from judgeforge import progress
from judgeforge.console import summary_table, usage_line
from judgeforge.llm.types import Usage
from judgeforge.pipeline_registry import register_pipelines
from tests.pipelines.synthesis.conftest import unique_examples_responder
from tests.run_yaml import loopback_run_yaml
from tests.support.commands import judgeforge, kedro
from tests.support.loopback_parameters import write_loopback_parameters

TOTAL = 24


def test_an_open_stage_logs_a_line_every_interval_and_one_when_it_ends(monkeypatch, caplog) -> None:
    monkeypatch.setenv(progress.INTERVAL_ENV, "0.05")
    caplog.set_level(logging.INFO, logger="judgeforge.progress")
    periodic = threading.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "ETA" in record.getMessage():
                periodic.set()

    watch = Watch()
    logging.getLogger("judgeforge.progress").addHandler(watch)
    try:
        with progress.stage("generation", total=10, unit="calls") as stage:
            stage.advance(4, rejected=1, tokens=1200, cost_usd=0.25)
            assert periodic.wait(timeout=30), "no progress line while the stage was open"
    finally:
        logging.getLogger("judgeforge.progress").removeHandler(watch)
    lines = [record.getMessage() for record in caplog.records]
    running = next(line for line in lines if "ETA" in line)
    assert running.startswith("generation: 4/10 calls done, 6 queued, 1 rejected")
    assert "1,200 tokens" in running and "$0.2500" in running
    assert "took" in lines[-1] and lines[-1].startswith("generation: 4/10 calls done")


class WatchedLock:
    """A lock that sets `waited` when a thread finds it taken and has to wait for it."""

    def __init__(self, waited: threading.Event) -> None:
        self._lock = threading.Lock()
        self.waited = waited

    def __enter__(self) -> None:
        if not self._lock.acquire(blocking=False):
            self.waited.set()
            self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


def test_a_stage_closing_while_its_progress_line_is_logged_ends_with_its_closing_line(
    monkeypatch, caplog
) -> None:
    # the interleaving of a loaded machine, made to happen: the stage closes (in another
    # thread) while the ticker is logging the stage's periodic line. The closer either finishes
    # or has to wait for the display; only then does the periodic line go on to the handlers.
    monkeypatch.setenv(progress.INTERVAL_ENV, "3600")  # the test ticks itself
    caplog.set_level(logging.INFO, logger="judgeforge.progress")
    display = progress._Display()
    closer_done_or_waiting = threading.Event()
    display._lock = WatchedLock(closer_done_or_waiting)
    stage = progress.Stage(name="generation", total=4)
    display.open(stage)
    stage.advance(1)

    def close() -> None:
        display.close(stage)
        closer_done_or_waiting.set()

    closer = threading.Thread(target=close)

    def close_while_logging(record: logging.LogRecord) -> bool:
        if "ETA" in record.getMessage() and closer.ident is None:
            closer.start()
            assert closer_done_or_waiting.wait(timeout=30), "the closer neither ended nor waited"
        return True

    logger = logging.getLogger("judgeforge.progress")
    logger.addFilter(close_while_logging)
    try:
        display.log_open_stages()
        closer.join(timeout=30)
    finally:
        logger.removeFilter(close_while_logging)
    assert not closer.is_alive()
    lines = [record.getMessage() for record in caplog.records]
    assert [("took" in line, "ETA" in line) for line in lines] == [(False, True), (True, False)]
    display.log_open_stages()  # a closed stage has no progress line
    assert len(caplog.records) == 2


def test_a_stage_closed_twice_logs_one_closing_line(monkeypatch, caplog) -> None:
    # a node's error closes every open stage, then the stage's own `with` block closes it again
    monkeypatch.setenv(progress.INTERVAL_ENV, "3600")
    caplog.set_level(logging.INFO, logger="judgeforge.progress")
    display = progress._Display()
    stage = progress.Stage(name="scoring", total=2)
    display.open(stage)
    display.close_all()
    display.close(stage)
    (line,) = [record.getMessage() for record in caplog.records]
    assert line.startswith("scoring: 0/2 calls done") and "took" in line


def test_a_stage_without_work_or_disabled_shows_nothing(caplog) -> None:
    caplog.set_level(logging.INFO, logger="judgeforge.progress")
    with progress.stage("embedding", total=0):
        pass
    with progress.stage("scoring", total=3, enabled=False) as stage:
        stage.advance(3)
    assert stage.done == 3
    assert caplog.records == []


def test_summary_table_names_outputs_counts_quality_and_cost() -> None:
    reports = {
        "generation_report": {
            "requested_total": 4,
            "delivered_total": 3,
            "rejected_total": 2,
            "per_class": {
                "yes": {"requested": 2, "delivered": 2},
                "no": {"requested": 2, "delivered": 1},
            },
        },
        "training_metrics": {
            "fine_tuned": {"macro_f1": 0.8},
            "base_model": {"macro_f1": 0.5},
            "lift": {"macro_f1": 0.3},
        },
    }
    usage = Usage(requests=5, cache_hits=2, input_tokens=100, output_tokens=20, cost_usd=0.5)
    table = summary_table(reports, {"report": "data/08_reporting/report.html"}, [usage])
    cells = [list(column.cells) for column in table.columns]
    rows = dict(zip(cells[0], cells[1]))
    assert rows["synthetic examples"] == "3/4 delivered (yes 2/2 · no 1/2), 2 rejected"
    assert rows["judge macro-F1"] == "0.800 (zero-shot base 0.500, lift +0.300)"
    assert rows["LLM calls"] == "5 calls, 2 cache hits, 120 tokens, $0.5000"
    assert rows["report"] == "data/08_reporting/report.html"
    assert "some models have no price" in usage_line([usage, Usage(input_tokens=1, priced=False)])


KEDRO_RUN = ("run", "--pipelines", "ingestion,synthesis")
KEDRO_RUN_ENVIRONMENT = {progress.INTERVAL_ENV: "0.2", "COLUMNS": "250"}


def kedro_run(project: Path, *args: str) -> subprocess.CompletedProcess:
    """Run `kedro run` in `project` with stdout piped (not a terminal) and return the finished process."""
    return kedro(project, *KEDRO_RUN, *args, env=KEDRO_RUN_ENVIRONMENT)


def kedro_run_watched(project: Path, watch: Callable[[str], None]) -> subprocess.CompletedProcess:
    """Run `kedro run` as kedro_run does, calling `watch` on each line of stdout as it comes; return the finished process."""
    process = subprocess.Popen(
        [sys.executable, "-m", "kedro", *KEDRO_RUN],
        cwd=project,
        env={**os.environ, **KEDRO_RUN_ENVIRONMENT},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out: list[str] = []
    err: list[str] = []

    def read_out() -> None:
        for line in process.stdout:
            out.append(line)
            watch(line)

    readers = [
        threading.Thread(target=read_out),
        threading.Thread(target=lambda: err.extend(process.stderr)),
    ]
    for reader in readers:
        reader.start()
    try:
        process.wait(timeout=600)
    finally:
        process.kill()
        for reader in readers:
            reader.join()
        process.stdout.close()
        process.stderr.close()
    return subprocess.CompletedProcess(process.args, process.returncode, "".join(out), "".join(err))


@pytest.fixture
def loopback_project(project_copy: Path, openai_server) -> Path:
    """Return a project copy whose LLM is the loopback server, answering slowly enough to be watched."""
    openai_server.respond_with(unique_examples_responder())
    openai_server.latency = 0.1
    write_loopback_parameters(
        project_copy,
        openai_server.base_url,
        generation={
            "total_examples": TOTAL,
            "examples_per_call": 1,
            "async_config": {"max_concurrent_requests": 2},
        },
    )
    return project_copy


def is_generation_progress(line: str) -> bool:
    """Return whether a line of the run's output is a periodic progress line of the generation stage."""
    return "generate_synthetic_examples · openai:" in line and "ETA" in line


def test_kedro_run_prints_progress_lines_node_lines_and_a_summary(
    loopback_project: Path, openai_server
) -> None:
    # the last call is answered only once a progress line of the generation stage is out:
    # the stage stays open until the ticker has spoken, however slowly the machine runs it
    printed = threading.Event()
    answers, numbers = unique_examples_responder(), itertools.count(1)

    def respond(request):
        if next(numbers) == TOTAL:
            printed.wait(timeout=120)
        return answers(request)

    openai_server.respond_with(respond)
    result = kedro_run_watched(
        loopback_project, lambda line: is_generation_progress(line) and printed.set()
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    nodes = len(register_pipelines()["ingestion"].nodes) + len(
        register_pipelines()["synthesis"].nodes
    )
    assert f"[1/{nodes}] extract_metric" in out and f"[{nodes}/{nodes}] " in out
    running = [line for line in out.splitlines() if is_generation_progress(line)]
    assert running, out
    assert "queued" in running[0] and "tokens/s" in running[0]
    assert f"generate_synthetic_examples · openai: {TOTAL}/{TOTAL} calls done" in out
    assert "Loading data from" not in out and "Saving data to" not in out
    assert "Saving the dataset" not in out + result.stderr  # the datasets library's bars
    assert f"{TOTAL}/{TOTAL} delivered" in out
    assert "data/generated_data/customer_complaint" in out


def test_kedro_run_verbose_restores_every_kedro_line(loopback_project: Path) -> None:
    result = kedro_run(loopback_project, "--verbose")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Loading data from seed_data" in result.stdout
    assert "Running node: validate_seed_rows" in result.stdout


def test_kedro_run_is_tracked_in_a_local_mlflow_store(loopback_project: Path, monkeypatch) -> None:
    import mlflow  # the `tracking` extra, part of `dev`

    # MLflow 3 opens a file store only when told
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    result = kedro_run(loopback_project)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MLflow run" in result.stdout

    client = mlflow.MlflowClient(tracking_uri=(loopback_project / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("customer_complaint")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["data_generation.generation.total_examples"] == str(TOTAL)
    assert run.data.params["data_generation.llm.provider"] == "openai"
    assert run.data.metrics["generation_report.delivered_total"] == TOTAL
    assert run.data.metrics["ingestion_report.rows_in"] == 120
    assert run.data.tags["kedro.pipelines"] == "ingestion,synthesis"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    assert {"reports/generation_report.json", "reports/ingestion_report.json"} <= artifacts


def test_a_run_in_process_leaves_no_store_to_the_next_one(tmp_path: Path, monkeypatch) -> None:
    """MLflow exports the store it is given as MLFLOW_TRACKING_URI; the next run must not inherit it."""
    from types import SimpleNamespace

    from judgeforge.tracking import MlflowHook

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    for project in ("first", "second"):
        hook = MlflowHook()
        context = SimpleNamespace(
            project_path=tmp_path / project, config_loader={"parameters": {"metric_name": "m"}}
        )
        hook.after_context_created(context)
        hook.before_pipeline_run({"pipeline_names": ["ingestion"]}, None, None)
        assert os.environ["MLFLOW_TRACKING_URI"] == (tmp_path / project / "mlruns").as_uri()
        hook.after_pipeline_run()
        assert "MLFLOW_TRACKING_URI" not in os.environ
        assert (tmp_path / project / "mlruns").is_dir()


def test_tracking_switched_off_writes_no_store(loopback_project: Path, monkeypatch) -> None:
    monkeypatch.setenv("JUDGEFORGE_MLFLOW", "0")
    result = kedro_run(loopback_project)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (loopback_project / "mlruns").exists()
    assert "MLflow run" not in result.stdout


@pytest.mark.parametrize("verbose", [False, True])
def test_judgeforge_run_is_quiet_unless_verbose(
    project_copy: Path, openai_server, tmp_path: Path, verbose: bool
) -> None:
    openai_server.respond_with(unique_examples_responder())
    example = project_copy / "examples" / "binary_single_customer_complaint.yaml"
    run_yaml = loopback_run_yaml(
        example, openai_server.base_url, project_copy / "run.yaml", run_steps=["data_generation"]
    )
    verbosity = ["--verbose"] if verbose else []
    result = judgeforge(project_copy, "run", "-c", str(run_yaml), *verbosity)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[1/" in result.stdout and "4/4 delivered" in result.stdout
    assert ("Loading data from seed_data" in result.stdout) is verbose
