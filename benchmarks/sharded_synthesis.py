"""Sharded synthesis (generation.shards) on the loopback latency server: 1 shard vs 2 and 4 shards, and 2 shards on Dask.

Each arm is a `kedro run --pipelines ingestion+synthesis` in a fresh copy of this checkout (its
own response cache, so every arm sends every call). The Dask arm runs it with
`--runner judgeforge.runners.DaskRunner --env dask` on a real cluster started for the arm on
127.0.0.1 (`dask scheduler` and two one-thread `dask worker` processes in the project copy, as
tests/support/dask_cluster.py starts them; the start is outside the timed synthesis), so the two
shards are generated in two worker processes. All arms talk to one loopback OpenAI-compatible server
started in its own process (`python -m tests.support.openai_server --json-examples`, every
answer a new example after `--latency` seconds). The arms run side by side in one invocation,
`--repeats` times each, interleaved. Throughput is delivered examples per second of synthesis
wall time (the report's `wall_time_s`: the generation node, or from the first shard's start to
the last shard's end plus the merge's refill). Every arm checks its result: each class quota met
exactly (class_quotas.json), no text twice, and no request answered twice (the server's count).

    .venv/bin/python benchmarks/sharded_synthesis.py
    .venv/bin/python benchmarks/sharded_synthesis.py --examples 400 --concurrency 32 --latency 0.2
    .venv/bin/python benchmarks/sharded_synthesis.py --arms "1 shard" "2 shards, Dask"
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.loopback import control, loopback_server
from tests.conftest import copy_project
from tests.support.dask_cluster import PATIENT_COMMS, dask_cluster

DASK_RUNNER = "judgeforge.runners.DaskRunner"
# what DaskRunner logs for each shard's generation node
SHARD_ON_WORKER = re.compile(r"Completed node \S*generate_shard\S* on worker (tcp://[\d.:]+)")
# (label, shards, kedro runner)
ARMS = (
    ("1 shard, SequentialRunner", 1, "SequentialRunner"),
    ("2 shards, ParallelRunner", 2, "ParallelRunner"),
    ("4 shards, ParallelRunner", 4, "ParallelRunner"),
    ("2 shards, Dask (2 workers)", 2, DASK_RUNNER),
)


def children_cpu_seconds() -> float:
    """Return the CPU seconds (user + system) of this process's finished child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_arm(base_url: str, shards: int, runner: str, args: argparse.Namespace) -> dict:
    """Return one arm's figures, after checking its result."""
    with tempfile.TemporaryDirectory(prefix="judgeforge-shards-") as tmp:
        project = copy_project(Path(tmp) / "project")
        dask = runner == DASK_RUNNER
        # the Dask runner needs conf/dask, which persists every dataset passed between nodes
        env = "dask" if dask else "bench"
        env_folder = project / "conf" / env
        env_folder.mkdir(exist_ok=True)
        parameters = {
            "data_generation": {
                "llm": {
                    "provider": "openai",
                    "model": "test-model",
                    "embedding_model": "text-embedding-3-small",
                    "base_url": base_url,
                },
                "generation": {
                    "total_examples": args.examples,
                    "examples_per_call": 1,
                    "shards": shards,
                    "async_config": {"max_concurrent_requests": args.concurrency},
                },
                "data_quality_metrics": {"enabled": False},
            }
        }
        (env_folder / "parameters_bench.yml").write_text(yaml.safe_dump(parameters))
        environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        environment.update(
            PYTHONPATH=str(project / "src"), KEDRO_DISABLE_TELEMETRY="1", JUDGEFORGE_MLFLOW="0"
        )
        command = [sys.executable, "-m", "kedro", "run", "--pipelines", "ingestion+synthesis"]
        command += ["--env", env, "--runner", runner]
        cpu_before = children_cpu_seconds()
        with contextlib.ExitStack() as stack:
            if dask:
                cluster = stack.enter_context(dask_cluster(project, project / "src"))
                # wide log lines: one runner line ("Completed node ... on worker ...") per line
                environment.update(
                    PATIENT_COMMS, DASK_SCHEDULER_ADDRESS=cluster.address, COLUMNS="400"
                )
            # each arm has a cache of its own and asks everything again
            control(base_url, "reset")
            started = time.perf_counter()
            result = subprocess.run(
                command, cwd=project, env=environment, capture_output=True, text=True, check=False
            )
            run_seconds = time.perf_counter() - started
        # the kedro run with its ParallelRunner processes, or with the Dask scheduler and workers
        # (their start and stop included): every process of the arm but the shared server
        cpu_seconds = children_cpu_seconds() - cpu_before
        if result.returncode != 0:
            raise RuntimeError(
                f"{shards} shards, {runner}: kedro run failed\n{result.stderr[-3000:]}"
            )
        after = control(base_url, "stats")
        report = json.loads((project / "data/08_reporting/generation_report.json").read_text())
        quotas = json.loads((project / "data/02_intermediate/class_quotas.json").read_text())
        rows = pd.read_parquet(project / "data/03_primary/synthetic_examples.parquet")
        exact = rows["label"].astype(str).value_counts().to_dict() == {
            k: v for k, v in quotas.items() if v
        }
        duplicates = int(rows["text"].duplicated().sum())
        if not exact or duplicates or after["answered_twice"]:
            raise RuntimeError(
                f"{shards} shards: counts exact {exact}, duplicates {duplicates}, "
                f"requests answered twice {after['answered_twice']}"
            )
        # where the scheduler put the shards (recorded: two on one worker would run one by one)
        shard_workers = set(re.findall(SHARD_ON_WORKER, result.stdout + result.stderr))
        return {
            "shard_workers": len(shard_workers) if dask else None,
            "synthesis_s": report["wall_time_s"],
            "run_s": run_seconds,
            "cpu_s": cpu_seconds,
            "load_1min": os.getloadavg()[0],
            "delivered": report["delivered_total"],
            "requests": after["requests"],
            "exact": exact,
            "duplicates": duplicates,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--arms",
        nargs="+",
        default=None,
        help="label prefixes of the arms to run (default: all); the first one is the baseline",
    )
    args = parser.parse_args()
    arms = [
        arm
        for arm in ARMS
        if args.arms is None or any(arm[0].startswith(prefix) for prefix in args.arms)
    ]
    with loopback_server(args.latency, "--json-examples") as base_url:
        figures: dict[str, list[dict]] = {label: [] for label, _, _ in arms}
        for _ in range(args.repeats):
            for label, shards, runner in arms:
                figures[label].append(run_arm(base_url, shards, runner, args))
                print(label, figures[label][-1], flush=True)
    print(f"\n{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    baseline = statistics.median(f["delivered"] / f["synthesis_s"] for f in figures[arms[0][0]])
    print(
        f"| arm | synthesis s (median) | examples/s (median) | ratio to {arms[0][0]} | "
        "whole run s (median) | CPU s per 100 examples (median) | requests | exact counts | "
        "duplicates | workers that ran shards |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, _, _ in arms:
        runs = figures[label]
        rate = statistics.median(f["delivered"] / f["synthesis_s"] for f in runs)
        print(
            f"| {label} | {statistics.median(f['synthesis_s'] for f in runs):.2f} | {rate:.1f} | "
            f"{rate / baseline:.2f} | {statistics.median(f['run_s'] for f in runs):.1f} | "
            f"{statistics.median(100 * f['cpu_s'] / f['delivered'] for f in runs):.1f} | "
            f"{statistics.median(f['requests'] for f in runs):.0f} | "
            f"{all(f['exact'] for f in runs)} | {sum(f['duplicates'] for f in runs)} | "
            f"{', '.join(str(f['shard_workers'] or '–') for f in runs)} |"
        )


if __name__ == "__main__":
    main()
