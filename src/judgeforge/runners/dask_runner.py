"""A Kedro runner that runs each node of a pipeline as a task on a Dask.distributed cluster.

It follows Kedro's documented Dask deployment (docs: deploy/supported-platforms/dask): one
`client.submit` per node, handed the futures of the nodes it depends on so that Dask orders
them, each task running its node through Kedro's own `Task` with a hook manager made on the
worker. Unlike that guide, no data passes through the scheduler: every dataset one node writes
and another reads is a file (conf/dask/catalog.yml persists what base keeps in memory), and a
pipeline with an in-memory dataset between nodes is refused before anything runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from kedro.runner import AbstractRunner
from kedro.runner.task import Task

from judgeforge.errors import UserError

try:
    from distributed import CancelledError, Client, as_completed, get_worker
except ImportError as error:  # an optional extra: one line saying how to get it
    raise UserError(
        "the Dask runner needs dask.distributed: pip install 'judgeforge[dask]'"
    ) from error

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from kedro.io import CatalogProtocol
    from kedro.pipeline import Pipeline
    from kedro.pipeline.node import Node
    from pluggy import PluginManager

# The scheduler to use when neither the runner nor the parameters name one.
ADDRESS_ENV = "DASK_SCHEDULER_ADDRESS"
# The run config's field for the scheduler (a judgeforge addition, see docs/configuration.md).
ADDRESS_PARAMETER = "dask_scheduler_address"


class InMemoryAcrossWorkersError(UserError):
    """A dataset kept in memory would be written on one Dask worker and read on another."""


class DaskRunner(AbstractRunner):
    """Runs every node as a Dask task; the nodes exchange data only through persisted datasets.

    The scheduler is `address` (`--runner-params address=tcp://host:8786`), else the run
    config's `dask_scheduler_address`, else $DASK_SCHEDULER_ADDRESS; with none, a LocalCluster
    is started for the run and closed after it.
    """

    def __init__(self, is_async: bool = False, address: str | None = None) -> None:
        super().__init__(is_async=is_async)
        self._address = address

    def _get_executor(self, max_workers: int) -> Executor | None:
        # the cluster executes the nodes; Kedro's executor loop is not used
        return None

    def _run(
        self,
        pipeline: Pipeline,
        catalog: CatalogProtocol,
        hook_manager: PluginManager | None = None,
        run_id: str | None = None,
    ) -> None:
        """Submit every node, each after the nodes it reads from, and wait for all of them."""
        check_nothing_in_memory_crosses(pipeline, catalog)
        from kedro.framework.project import PACKAGE_NAME

        done: list[Node] = []
        with dask_client(self.scheduler_address(catalog)) as client:
            self._logger.info(
                "Running %d nodes on the Dask cluster at %s (%d workers)",
                len(pipeline.nodes),
                client.scheduler.address,
                len(client.scheduler_info()["workers"]),
            )
            futures: dict[Node, Any] = {}
            for node in pipeline.nodes:  # topologically sorted: a node's parents come first
                parents = [futures[parent] for parent in pipeline.node_dependencies[node]]
                futures[node] = client.submit(
                    run_node_on_worker,
                    node,
                    catalog,
                    self._is_async,
                    run_id,
                    PACKAGE_NAME,
                    *parents,
                    key=f"{node.name}-{run_id or uuid4().hex}",
                )
            names = {future.key: node for node, future in futures.items()}
            try:
                for future in as_completed(futures.values()):
                    node = names[future.key]
                    worker = finished_on(future, node, client.scheduler.address)
                    done.append(node)
                    self._logger.info("Completed node %s on worker %s", node.name, worker)
                    self._logger.info("Completed %d out of %d tasks", len(done), len(futures))
            except Exception:
                client.cancel(list(futures.values()))
                self._suggest_resume_scenario(pipeline, done, catalog)
                raise

    def scheduler_address(self, catalog: CatalogProtocol) -> str | None:
        """Return the scheduler to connect to, or None for a LocalCluster of this run."""
        parameters = catalog.load("parameters") if "parameters" in catalog else {}
        configured = (parameters or {}).get(ADDRESS_PARAMETER)
        return self._address or configured or os.environ.get(ADDRESS_ENV) or None


def finished_on(future: Any, node: Node, address: str) -> str:
    """Return the worker that ran `node`; raise its error, or a one-line error if it was cancelled.

    A task is cancelled when the client loses the scheduler (or a worker holding its inputs
    dies): as_completed yields it like a finished one, so it is told apart here.
    """
    try:
        return future.result()
    except CancelledError as error:
        raise ConnectionError(
            f"DaskRunner: the Dask cluster at {address} cancelled node {node.name} ({error}); "
            "nothing after it ran: check the scheduler and workers, then run again"
        ) from error


def check_nothing_in_memory_crosses(pipeline: Pipeline, catalog: CatalogProtocol) -> None:
    """Raise when a node writes a dataset kept in memory: its reader (or the caller) is elsewhere."""
    in_memory = sorted(
        name
        for name in pipeline.all_outputs()
        if getattr(catalog.get(name, fallback_to_runtime_pattern=True), "_EPHEMERAL", False)
    )
    if in_memory:
        raise InMemoryAcrossWorkersError(
            f"DaskRunner: {', '.join(in_memory)} would be kept in memory on the Dask worker that "
            "writes it, out of reach of the nodes and the run on other workers: persist it in "
            "the catalog (run with --env dask, whose catalog writes every such dataset to a file)"
        )


@contextmanager
def dask_client(address: str | None) -> Iterator[Client]:
    """Yield a client of the scheduler at `address`, or of a LocalCluster closed afterwards."""
    try:
        client = Client(address) if address else Client(processes=True)
    except OSError as error:  # distributed's connect timeout is an OSError too
        raise UserError(
            f"DaskRunner: no Dask scheduler answers at {address} ({error}): start one "
            f"(`dask scheduler`) or fix {ADDRESS_PARAMETER} / ${ADDRESS_ENV}"
        ) from error
    with client:
        yield client


def run_node_on_worker(
    node: Node,
    catalog: CatalogProtocol,
    is_async: bool,
    run_id: str | None,
    package_name: str | None,
    *parents: str,
) -> str:
    """Run `node` on this worker with the project's hooks; return the worker's address.

    `parents` are the results of the tasks this one waits for (their workers' addresses), only
    there so that Dask runs them first. The hook manager is made here, as Kedro's ParallelRunner
    does in a subprocess, because a PluginManager does not pickle. It holds the project's hooks
    only: plugins' hooks (kedro-viz's dataset statistics) need the session, which stays with
    the run.
    """
    from kedro.framework.hooks.manager import _create_hook_manager, _register_hooks
    from kedro.framework.project import PACKAGE_NAME, configure_project, settings

    if package_name and package_name != PACKAGE_NAME:
        configure_project(package_name)
    hook_manager = _create_hook_manager()
    _register_hooks(hook_manager, settings.HOOKS)
    Task(node, catalog, is_async, hook_manager=hook_manager, run_id=run_id).execute()
    return get_worker().address
