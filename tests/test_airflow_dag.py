"""`kedro airflow create` (the kedro-airflow plugin, extra `airflow`) turns the registered pipelines into Airflow DAGs.

Airflow itself is not installed: the generated files are parsed with `ast` and checked against
the Kedro pipeline and catalog they came from: every node in exactly one task, every in-memory
dataset inside one task, every persisted dataset between tasks ordered by a dependency, no
cycle (in the base environment `resolved_metric` made one; conf/airflow persists it), and task
ids Airflow accepts.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kedro.io import MemoryDataset

pytest.importorskip("kedro_airflow")

PIPELINES = ("__default__", "ingestion+synthesis+labelling")
TEMPLATE = "src/judgeforge/airflow_dag.j2"
ENV = "airflow"
# Airflow's rule for a task_id (airflow.utils.helpers.validate_key)
AIRFLOW_KEY = re.compile(r"^[\w.-]{1,250}$")


@dataclass
class Dag:
    """What a generated DAG file declares: its id, each task's nodes, and the task dependencies."""

    dag_id: str
    nodes_by_task: dict[str, list[str]]
    edges: set[tuple[str, str]]

    def reaches(self, start: str, goal: str) -> bool:
        """Return whether task `goal` runs after task `start` (a path of dependencies)."""
        seen, frontier = {start}, [start]
        while frontier:
            current = frontier.pop()
            for before, after in self.edges:
                if before == current and after not in seen:
                    seen.add(after)
                    frontier.append(after)
        return goal in seen


def keyword(call: ast.Call, name: str) -> ast.expr:
    """Return the value of keyword argument `name` of `call`."""
    return next(k.value for k in call.keywords if k.arg == name)


def calls(tree: ast.AST, function: str) -> Iterator[ast.Call]:
    """Yield every call of `function` (a bare name) in `tree`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == function:
            yield node


def parse_dag(path: Path) -> Dag:
    """Return what the DAG file at `path` declares."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    (dag_call,) = calls(tree, "dag")
    task_ids, nodes = {}, {}
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef):
            continue
        decorators = [d for d in function.decorator_list if getattr(d, "func", None)]
        task = [d for d in decorators if d.func.id == "task"]
        if task:
            task_ids[function.name] = ast.literal_eval(keyword(task[0], "task_id"))
            (run,) = calls(function, "_run_kedro_node")
            nodes[function.name] = ast.literal_eval(keyword(run, "node_names"))
    (tasks_dict,) = (
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", None) == "tasks"
    )
    function_by_key = {
        ast.literal_eval(key): value.func.id
        for key, value in zip(tasks_dict.keys, tasks_dict.values, strict=True)
    }
    edges = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.RShift):
            before, after = (
                task_ids[function_by_key[ast.literal_eval(side.slice)]]
                for side in (node.left, node.right)
            )
            edges.add((before, after))
    return Dag(
        ast.literal_eval(keyword(dag_call, "dag_id")),
        {task_ids[f]: nodes[f] for f in task_ids},
        edges,
    )


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Return a project copy and the folder `kedro airflow create` wrote the DAGs of PIPELINES into."""
    from tests.conftest import copy_project

    project = copy_project(tmp_path_factory.mktemp("airflow") / "project")
    dags = project.parent / "dags"
    result = subprocess.run(
        [sys.executable, "-m", "kedro", "airflow", "create", "--group-by", "memory"]
        + ["--env", ENV, "-j", TEMPLATE, "-t", str(dags), "-p", ",".join(PIPELINES)],
        cwd=project,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return project, dags


def dag_file(dags: Path, pipeline: str) -> Path:
    """Return the file kedro-airflow writes for `pipeline`."""
    suffix = "" if pipeline == "__default__" else f"_{pipeline}"
    return dags / f"judgeforge_{ENV}{suffix}_dag.py"


@pytest.mark.parametrize("pipeline_name", PIPELINES)
def test_the_dag_runs_every_node_once_with_memory_datasets_inside_one_task(
    generated: tuple[Path, Path], pipeline_name: str
) -> None:
    from kedro.framework.project import pipelines
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    project, dags = generated
    dag = parse_dag(dag_file(dags, pipeline_name))
    bootstrap_project(project)
    pipeline = pipelines[pipeline_name]
    with KedroSession.create(project_path=project, env=ENV) as session:
        catalog = session.load_context().catalog

    assert all(AIRFLOW_KEY.match(task_id) for task_id in dag.nodes_by_task), dag.nodes_by_task
    task_of = {n: task for task, names in dag.nodes_by_task.items() for n in names}
    scheduled = [n for names in dag.nodes_by_task.values() for n in names]
    assert sorted(scheduled) == sorted(node.name for node in pipeline.nodes)

    producer = {output: node.name for node in pipeline.nodes for output in node.outputs}
    inputs = {node.name: node.inputs for node in pipeline.nodes}
    in_memory_handoffs = 0
    for node in pipeline.nodes:
        for dataset in node.inputs:
            if dataset not in producer:
                continue
            before, after = task_of[producer[dataset]], task_of[node.name]
            in_memory = dataset not in catalog or isinstance(catalog.get(dataset), MemoryDataset)
            if in_memory:
                in_memory_handoffs += 1
                assert before == after, f"{dataset} is in memory but crosses {before} -> {after}"
            elif before != after:
                assert dag.reaches(before, after), (
                    f"{after} may start before {before} wrote {dataset}"
                )
    assert in_memory_handoffs > 0  # the grouping was exercised
    assert len(dag.nodes_by_task) > 1  # and persisted datasets still split the run into tasks
    # no dependency that no dataset asks for, and no cycle
    for before, after in dag.edges:
        assert not dag.reaches(after, before), f"cycle through {before} and {after}"
        assert any(
            task_of.get(producer.get(dataset, "")) == before
            for name in dag.nodes_by_task[after]
            for dataset in inputs[name]
        ), f"{before} >> {after} carries no dataset"


def test_each_registered_pipeline_gets_its_own_dag_id(generated: tuple[Path, Path]) -> None:
    _, dags = generated
    ids = {pipeline: parse_dag(dag_file(dags, pipeline)).dag_id for pipeline in PIPELINES}
    assert ids == {
        "__default__": "judgeforge",
        "ingestion+synthesis+labelling": "judgeforge-ingestion-synthesis-labelling",
    }
