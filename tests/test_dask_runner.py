"""The DaskRunner on a real cluster (a `dask scheduler` and two `dask worker` processes on 127.0.0.1).

Datasets that pass between nodes cross workers: persisted they arrive, in memory they are refused
before anything runs (and, were they not, the reading node would fail on its worker).
"""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, DatasetError
from kedro.pipeline import Pipeline, node
from kedro_datasets.pickle import PickleDataset

from judgeforge.config import load_run_config, validate_run_config
from judgeforge.config.problems import ConfigError
from judgeforge.errors import UserError
from judgeforge.runners import DaskRunner, dask_runner
from judgeforge.runners.dask_runner import InMemoryAcrossWorkersError
from judgeforge.sdk import pipeline_name
from tests.run_yaml import EXAMPLES, loopback_run_yaml
from tests.support.dask_cluster import PATIENT_COMMS, DaskCluster, dask_cluster
from tests.support.openai_server import example_answers

RENDEZVOUS_TIMEOUT_S = 120


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[DaskCluster]:
    """A scheduler and two one-thread workers started in a scratch folder."""
    folder = tmp_path / "cluster"
    folder.mkdir()
    with dask_cluster(folder, Path(__file__).resolve().parents[1] / "src") as running:
        yield running


@pytest.fixture
def project_cluster(project_copy: Path) -> Iterator[DaskCluster]:
    """A scheduler and two workers started in the project copy, as Kedro's Dask guide starts them."""
    with dask_cluster(project_copy, project_copy / "src") as running:
        yield running


def meet(folder: str, me: str, other: str) -> dict[str, str]:
    """Return this worker's address once the node `other` has started too (on another worker)."""
    from distributed import get_worker

    Path(folder, me).touch()
    deadline = time.monotonic() + RENDEZVOUS_TIMEOUT_S
    while not Path(folder, other).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{other} never started beside {me}")
        time.sleep(0.05)
    return {"value": me, "worker": get_worker().address}


def meet_left(folder: str) -> dict[str, str]:
    """Return the left half, written while the right node runs."""
    return meet(folder, "left", "right")


def meet_right(folder: str) -> dict[str, str]:
    """Return the right half, written while the left node runs."""
    return meet(folder, "right", "left")


def join(left: dict[str, str], right: dict[str, str]) -> dict[str, object]:
    """Return both halves and the worker that read them."""
    from distributed import get_worker

    return {"halves": [left, right], "reader": get_worker().address}


def two_writers_one_reader() -> Pipeline:
    """Two nodes that can only finish on two workers at once, and a node reading what both wrote."""
    return Pipeline(
        [
            node(meet_left, "params:rendezvous", "left", name="write_left"),
            node(meet_right, "params:rendezvous", "right", name="write_right"),
            node(join, ["left", "right"], "joined", name="read_both"),
        ]
    )


def catalog_for(tmp_path: Path, persisted: tuple[str, ...]) -> DataCatalog:
    """Return a catalog with `persisted` (and the result) as pickles; the others stay in memory."""
    rendezvous = tmp_path / "rendezvous"
    rendezvous.mkdir(exist_ok=True)
    datasets = {
        name: PickleDataset(filepath=str(tmp_path / f"{name}.pkl"))
        for name in (*persisted, "joined")
    }
    catalog = DataCatalog(datasets=datasets)
    catalog["params:rendezvous"] = str(rendezvous)
    return catalog


def test_persisted_datasets_cross_workers(cluster: DaskCluster, tmp_path: Path) -> None:
    DaskRunner(address=cluster.address).run(
        two_writers_one_reader(), catalog_for(tmp_path, ("left", "right"))
    )

    joined = pickle.loads((tmp_path / "joined.pkl").read_bytes())
    left, right = joined["halves"]
    assert (left["value"], right["value"]) == ("left", "right")
    assert {left["worker"], right["worker"]} == set(cluster.workers)
    # whichever worker read them, one of the two halves was written on the other worker
    assert joined["reader"] in cluster.workers


def test_a_dataset_in_memory_between_nodes_is_refused_in_one_line(
    cluster: DaskCluster, tmp_path: Path
) -> None:
    catalog = catalog_for(tmp_path, ("left",))  # `right` falls to Kedro's MemoryDataset

    with pytest.raises(InMemoryAcrossWorkersError) as refused:
        DaskRunner(address=cluster.address).run(two_writers_one_reader(), catalog)

    message = str(refused.value)
    assert message.splitlines() == [message]
    assert message.startswith("DaskRunner: right would be kept in memory")
    assert "--env dask" in message
    assert not (tmp_path / "rendezvous" / "left").exists(), "refused before any node ran"


def test_unrefused_memory_written_on_one_worker_never_reaches_a_node_on_another(
    cluster: DaskCluster, tmp_path: Path, monkeypatch
) -> None:
    # what the refusal spares: the reader's copy of the catalog never saw the writer's memory.
    # Kedro's empty MemoryDataset marks "no data" by a sentinel object that does not survive
    # pickling, so the reader is handed a bare object() instead of an error.
    monkeypatch.setattr(dask_runner, "check_nothing_in_memory_crosses", lambda *_: None)
    catalog = catalog_for(tmp_path, ("left",))

    try:
        DaskRunner(address=cluster.address).run(two_writers_one_reader(), catalog)
    except DatasetError:
        return  # a Kedro that raises here fails loudly by itself
    left, right = pickle.loads((tmp_path / "joined.pkl").read_bytes())["halves"]
    assert left["value"] == "left"
    assert type(right) is object, "the right half crossed workers in memory"


def test_an_unreachable_scheduler_is_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT", "2s")
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:9")  # discard: nobody listens
    import dask

    dask.config.refresh()
    try:
        with pytest.raises(UserError, match=r"^DaskRunner: no Dask scheduler answers at tcp://127"):
            DaskRunner().run(two_writers_one_reader(), catalog_for(tmp_path, ("left", "right")))
    finally:
        monkeypatch.undo()
        dask.config.refresh()


def test_pipeline_provider_accepts_dask_and_an_address(raw_config: dict) -> None:
    config = validate_run_config(
        {**raw_config, "pipeline_provider": "dask", "dask_scheduler_address": "tcp://h:8786"}
    )
    assert (config.pipeline_provider, config.dask_scheduler_address) == ("dask", "tcp://h:8786")
    with pytest.raises(ConfigError, match="must be one of local .*, dask"):
        validate_run_config({**raw_config, "pipeline_provider": "ray"})


def workers_of_nodes(output: str) -> list[str]:
    """Return the worker of each `Completed node <name> on worker <address>` line the runner logged."""
    return re.findall(r"Completed node \S+ on worker (tcp://[\d.:]+)", output)


def node_count(*pipeline_names: str) -> int:
    """Return how many nodes the registered pipelines have together."""
    from judgeforge.pipeline_registry import register_pipelines

    pipelines = register_pipelines()
    return len(sum((pipelines[name] for name in pipeline_names), Pipeline([])).nodes)


def test_kedro_run_with_the_dask_runner_and_env(
    project_copy: Path, project_cluster: DaskCluster, openai_server
) -> None:
    openai_server.respond_with(example_answers)
    loopback = {
        "data_generation": {
            "llm": {
                "provider": "openai",
                "model": "test-model",
                "embedding_model": "text-embedding-3-small",
                "base_url": openai_server.base_url,
            },
            "generation": {"total_examples": 4, "examples_per_call": 1},
        }
    }
    (project_copy / "conf/dask/parameters_loopback.yml").write_text(yaml.safe_dump(loopback))
    command = [
        sys.executable,
        "-m",
        "kedro",
        "run",
        "--pipelines",
        "ingestion,synthesis",
        "--runner",
        "judgeforge.runners.DaskRunner",
        "--env",
        "dask",
    ]
    done = subprocess.run(
        command,
        cwd=project_copy,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**_environment(), "DASK_SCHEDULER_ADDRESS": project_cluster.address},
    )

    assert done.returncode == 0, done.stderr[-3000:]
    # every node was a task on the test's workers
    nodes = node_count("ingestion", "synthesis")
    assert f"Running {nodes} nodes on the Dask cluster at {project_cluster.address}" in done.stdout
    workers = workers_of_nodes(done.stdout)
    assert len(workers) == nodes and set(workers) <= set(project_cluster.workers), done.stdout
    synthetic = pd.read_parquet(project_copy / "data/03_primary/synthetic_examples.parquet")
    assert len(synthetic) == 4
    report = json.loads((project_copy / "data/08_reporting/generation_report.json").read_text())
    assert report["delivered_total"] == 4
    # what base keeps in memory between nodes went through files under the data root
    assert (project_copy / "data/02_intermediate/dask/readable_seed_rows.pkl").is_file()
    assert openai_server.answered_twice() == []


def test_kedro_run_with_the_dask_runner_refuses_base_memory_datasets(
    project_copy: Path, project_cluster: DaskCluster
) -> None:
    command = [
        sys.executable,
        "-m",
        "kedro",
        "run",
        "--pipelines",
        "ingestion",
        "--runner",
        "judgeforge.runners.DaskRunner",
        "--runner-params",
        f"address={project_cluster.address}",
    ]
    done = subprocess.run(
        command,
        cwd=project_copy,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=_environment(),
    )

    assert done.returncode == 2, done.stderr[-3000:]
    assert "Error: DaskRunner: readable_seed_rows would be kept in memory" in done.stderr
    # refused before any node ran: the report says so instead of rows
    report = json.loads((project_copy / "data/08_reporting/ingestion_report.json").read_text())
    assert report["run"]["status"] == "failed"
    assert report["run"]["error"].startswith("DaskRunner: readable_seed_rows")
    assert "rows_in" not in report


def test_judgeforge_run_with_pipeline_provider_dask(
    project_copy: Path, project_cluster: DaskCluster, openai_server, tmp_path: Path
) -> None:
    openai_server.respond_with(example_answers)
    run_yaml = loopback_run_yaml(
        EXAMPLES[0],
        openai_server.base_url,
        project_copy / "run.yaml",
        run_steps=["data_generation"],
        pipeline_provider="dask",
        dask_scheduler_address=project_cluster.address,
    )
    done = subprocess.run(
        [sys.executable, "-m", "judgeforge", "run", "-c", str(run_yaml)],
        cwd=project_copy,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=_environment(),
    )

    assert done.returncode == 0, done.stderr[-3000:]
    repo = load_run_config(run_yaml).data_generation.output.dataset.repo_name
    assert f"dataset: {project_copy.resolve() / 'data/generated_data' / repo}\n" in done.stdout
    nodes = node_count(pipeline_name(load_run_config(run_yaml), ["data_generation"]), "reporting")
    assert f"Running {nodes} nodes on the Dask cluster at {project_cluster.address}" in done.stdout
    workers = workers_of_nodes(done.stdout)
    assert len(workers) == nodes and set(workers) <= set(project_cluster.workers), done.stdout
    report = json.loads((project_copy / "data/08_reporting/generation_report.json").read_text())
    assert report["delivered_total"] == 4
    assert (project_copy / "data/02_intermediate/dask/readable_seed_rows.pkl").is_file()
    assert openai_server.answered_twice() == []


def _environment() -> dict[str, str]:
    import os

    # wide log lines, so that one line is one log record
    environment = {**os.environ, **PATIENT_COMMS, "COLUMNS": "400"}
    environment.pop("DASK_SCHEDULER_ADDRESS", None)
    return environment


def test_a_failed_run_keeps_the_reports_its_workers_wrote(tmp_path: Path) -> None:
    from kedro_datasets.json import JSONDataset

    from judgeforge.run_reports import RunReportHook

    names = ("ingestion_report", "generation_report", "labelling_report")
    catalog = DataCatalog(
        datasets={name: JSONDataset(filepath=str(tmp_path / f"{name}.json")) for name in names}
    )
    pipeline = Pipeline([node(lambda: ({}, {}, {}), None, list(names), name="reports")])
    hook = RunReportHook()
    hook.before_pipeline_run({"run_id": "this-run"}, pipeline, catalog)
    # a worker's hooks saved this one without a stamp; an earlier run stamped the next one
    catalog.save("ingestion_report", {"rows_in": 120})
    catalog.save("generation_report", {"run": {"run_id": "earlier", "status": "completed"}})

    hook.on_pipeline_error(RuntimeError("labelling broke"), {}, pipeline, catalog)

    assert catalog.load("ingestion_report") == {"rows_in": 120}
    for name in ("generation_report", "labelling_report"):
        run = catalog.load(name)["run"]
        assert (run["run_id"], run["status"]) == ("this-run", "failed")
