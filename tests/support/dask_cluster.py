"""A real Dask.distributed cluster on 127.0.0.1: `dask scheduler` and two `dask worker` processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import PROJECT_ROOT

START_TIMEOUT_S = 120
# Dask's comms give up on a silent peer after 30 s; a loaded test machine can starve one longer.
PATIENT_COMMS = {"DASK_DISTRIBUTED__COMM__TIMEOUTS__TCP": "300s"}


@dataclass(frozen=True)
class DaskCluster:
    """The scheduler's address and the addresses of its workers."""

    address: str
    workers: tuple[str, ...]


@contextmanager
def dask_cluster(folder: Path, src: Path, workers: int = 2) -> Iterator[DaskCluster]:
    """Start a scheduler and `workers` one-thread workers in `folder`, importing code from `src`.

    Every port is chosen by the system (port 0); the scheduler writes its address to a file the
    workers read. The workers start in `folder` (a project's root, as Kedro's Dask guide starts
    them) with `src` and the repository (for test modules' node functions) on their path. Every
    process is stopped on exit.
    """
    scheduler_file = folder / "dask-scheduler.json"
    env = {
        **os.environ,
        **PATIENT_COMMS,
        "PYTHONPATH": os.pathsep.join([str(src), str(PROJECT_ROOT)]),
    }
    dask = [sys.executable, "-m", "dask"]
    processes = [
        subprocess.Popen(
            [
                *dask,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(scheduler_file),
            ],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        address = _scheduler_address(scheduler_file, processes[0])
        for _ in range(workers):
            processes.append(
                subprocess.Popen(
                    [
                        *dask,
                        "worker",
                        address,
                        "--host",
                        "127.0.0.1",
                        "--nthreads",
                        "1",
                        "--no-nanny",
                        "--no-dashboard",
                    ],
                    cwd=folder,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        yield DaskCluster(address, _wait_for_workers(address, workers))
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _scheduler_address(scheduler_file: Path, scheduler: subprocess.Popen) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if scheduler.poll() is not None:
            raise RuntimeError(f"dask scheduler exited with {scheduler.returncode}")
        if scheduler_file.is_file():
            try:
                return json.loads(scheduler_file.read_text())["address"]
            except (json.JSONDecodeError, KeyError):
                pass  # still being written
        time.sleep(0.2)
    raise TimeoutError("dask scheduler did not start")


def _wait_for_workers(address: str, count: int) -> tuple[str, ...]:
    from distributed import Client

    with Client(address, timeout=START_TIMEOUT_S) as client:
        client.wait_for_workers(count, timeout=START_TIMEOUT_S)
        return tuple(sorted(client.scheduler_info(n_workers=-1)["workers"]))
