"""Batch vs online through `judgeforge run -c` on the loopback server: cost accounted, requests sent, resume after kill (not a test).

The binary complaint example, data generation only, `--examples` rows one per call on
gpt-4o-mini (a priced model), diagnostics off, C=8, served by the loopback server in its own
process (`--json-examples`, latency `--latency` s). Three runs per repeat, each in a fresh copy
of the project:

- online: `async_config.batch: false`;
- batch: `async_config.batch: true`;
- kill + resume: batch on, the server holds the batch `in_progress`; the run is killed
  (SIGKILL) once it polls, the hold is released, and the same command runs again.

`--provider gemini` runs the same on gemini-2.5-flash (Gemini's inline batch jobs; google-genai
pointed at the loopback server by GOOGLE_GEMINI_BASE_URL; the embedded MiniLM embeds, as the
loopback server speaks no Gemini embeddings).

Reported per run: exit status, wall seconds (Kedro's start included), cost accounted
(generation_report usage.cost_usd), chat requests sent online, chat requests carried by
batches, Batch API calls (files, batches, polls), batches created, requests answered twice.

    PYTHONPATH=src .venv/bin/python benchmarks/batch_api.py [--repeats 3] [--examples 100] \
        [--provider openai|gemini]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.loopback import control, loopback_server
from tests.conftest import copy_project
from tests.run_yaml import loopback_run_yaml

EXAMPLE = ROOT / "examples" / "binary_single_customer_complaint.yaml"


LLM = {
    "openai": {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "embedding_model": "text-embedding-3-small",
    },
    "gemini": {"provider": "gemini", "model": "gemini-2.5-flash", "embedding_model": "local"},
}
# Batch API calls a run makes before its first poll: upload and create (OpenAI), create (Gemini)
CALLS_TO_FIRST_POLL = {"openai": 3, "gemini": 2}


def run_yaml(base_url: str, target: Path, examples: int, batch: bool, provider: str) -> Path:
    """The example, `examples` rows one per call through `base_url`, batch on or off."""
    llm = {**LLM[provider], **({"base_url": base_url} if provider == "openai" else {})}
    return loopback_run_yaml(
        EXAMPLE,
        base_url,
        target,
        run_steps=["data_generation"],
        data_generation__llm=llm,
        data_generation__generation__total_examples=examples,
        data_generation__generation__async_config={
            "max_concurrent_requests": 8,
            "max_retries": 1,
            "batch": batch,
        },
    )


def command(config: Path, base_url: str) -> tuple[list[str], dict[str, str]]:
    environment = {
        **os.environ,
        "OPENAI_API_KEY": "sk-bench-0123456789",
        "GOOGLE_API_KEY": "AIza-bench-0123456789",
        "GOOGLE_GEMINI_BASE_URL": base_url.removesuffix("/v1"),
        "KEDRO_DISABLE_TELEMETRY": "1",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(ROOT / "src"),
    }
    return [sys.executable, "-m", "judgeforge", "run", "-c", str(config)], environment


def judgeforge_run(project: Path, config: Path, base_url: str) -> tuple[int, float]:
    """Exit status and wall seconds of `judgeforge run -c config` in `project`."""
    args, environment = command(config, base_url)
    started = time.perf_counter()
    done = subprocess.run(
        args, check=False, cwd=project, env=environment, capture_output=True, text=True
    )
    if done.returncode:
        print(done.stderr[-1500:], file=sys.stderr)
    return done.returncode, time.perf_counter() - started


def killed_while_polling(project: Path, config: Path, base_url: str, provider: str) -> float:
    """Start the run, SIGKILL it once it polls its held batch; return the seconds it ran."""
    args, environment = command(config, base_url)
    first_poll = CALLS_TO_FIRST_POLL[provider]
    started = time.perf_counter()
    process = subprocess.Popen(
        args, cwd=project, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while process.poll() is None and control(base_url, "stats")["batch_api_calls"] < first_poll:
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    return time.perf_counter() - started


def batches(base_url: str, **settings: Any) -> None:
    root = base_url.removesuffix("/v1")
    request = urllib.request.Request(
        f"{root}/_control/batches",
        data=json.dumps(settings).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request).read()


def measured(base_url: str, project: Path, status: int, wall: float) -> dict[str, Any]:
    stats = control(base_url, "stats")
    report = json.loads((project / "data/08_reporting/generation_report.json").read_text())
    online = stats["requests"] - stats["batch_requests"] - stats["batch_api_calls"]
    return {
        "status": status,
        "wall_s": round(wall, 1),
        "delivered": report["delivered_total"],
        "cost_usd": report["usage"]["cost_usd"],
        "online_chat": online,
        "batch_chat": stats["batch_requests"],
        "batch_api_calls": stats["batch_api_calls"],
        "batches_created": stats["batches_created"],
        "answered_twice": stats["answered_twice"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--provider", choices=sorted(LLM), default="openai")
    args = parser.parse_args()
    rows: dict[str, list[dict[str, Any]]] = {"online": [], "batch": [], "kill+resume": []}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for name, runs in rows.items():
                # a fresh server per run: its batch counters start at zero
                with loopback_server(args.latency, "--json-examples") as base_url:
                    project = copy_project(Path(scratch) / f"{name}-{repeat}".replace("+", "-"))
                    config = run_yaml(
                        base_url,
                        Path(scratch) / f"{name}-{repeat}.yaml",
                        args.examples,
                        batch=name != "online",
                        provider=args.provider,
                    )
                    if name == "kill+resume":
                        batches(base_url, hold=True)
                        killed_after = killed_while_polling(
                            project, config, base_url, args.provider
                        )
                        batches(base_url, hold=False)
                        status, wall = judgeforge_run(project, config, base_url)
                        row = measured(base_url, project, status, wall)
                        row["killed_after_s"] = round(killed_after, 1)
                    else:
                        row = measured(
                            base_url, project, *judgeforge_run(project, config, base_url)
                        )
                runs.append(row)
                print(name, json.dumps(row), flush=True)
    print("\nmedians:")
    for name, runs in rows.items():
        keys = [key for key in runs[0] if key != "status"]
        summary = {key: statistics.median(run[key] for run in runs) for key in keys}
        summary["statuses"] = [run["status"] for run in runs]
        print(name, json.dumps(summary))
    ratio = statistics.median(r["cost_usd"] for r in rows["batch"]) / statistics.median(
        r["cost_usd"] for r in rows["online"]
    )
    print(f"batch cost / online cost (medians): {ratio:.3f}")


if __name__ == "__main__":
    main()
