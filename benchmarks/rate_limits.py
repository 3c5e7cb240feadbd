"""The request engine against rate limits on loopback servers, this tree beside another git ref (not a test).

Three workloads, each server in its own process and each measurement in its own client process:

- token bucket: the server admits `--bucket-rate` calls/s (bursts up to a tenth of that) and
  answers the rest 429 at once, Retry-After 5 ms above the refill time; admitted calls take
  `--bucket-latency` s; C=256, 3,000 calls.
  Reported: delivered, delivered rate ÷ admitted rate, 429s per call.
- random 429 (latency 0.2 s): 20 % of calls answered 429 with `Retry-After: 1` after the latency; C=64,
  1,600 calls. Reported: calls/s ÷ (C / latency).
- no 429 (latency 0.2 s): C=256, 6,400 calls. Reported: calls/s ÷ (C / latency).
- pipeline (`--only pipeline`): `judgeforge run -c` on the binary example, data generation
  only, against a bucket admitting 20 calls/s (burst 2, latency 0.05 s), C=64, 300 examples one
  per call, in a copy of each tree (`git archive`). Reported: exit status, wall seconds,
  delivered, 429s, and the command's last line.

    PYTHONPATH=src .venv/bin/python benchmarks/rate_limits.py [--repeats 3] [--baseline main]

The baseline's `src/` is taken with `git archive <ref>` into a temporary folder; the same
client code (build_llm_client, generate) runs against both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.loopback import control, loopback_server

LATENCY = 0.2


def measure(source: Path, base_url: str, concurrency: int, calls: int, tag: str) -> dict[str, Any]:
    """One generation in a fresh process importing judgeforge from `source`; its figures."""
    control(base_url, "reset")
    with tempfile.TemporaryDirectory(prefix="jf-rate-") as cache_dir:
        command = [
            sys.executable,
            __file__,
            "--worker",
            base_url,
            str(concurrency),
            str(calls),
            tag,
            str(Path(cache_dir) / "cache.sqlite"),
        ]
        output = subprocess.run(
            command,
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(source)},
        ).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    figures["server"] = control(base_url, "stats")
    return figures


def worker(base_url: str, concurrency: int, calls: int, tag: str, cache_path: str) -> None:
    """Subprocess body: generate `calls` distinct requests and print what came back."""
    from judgeforge.llm import LLMRequest, build_llm_client

    client = build_llm_client(
        "openai",
        "bench-model",
        base_url=base_url,
        cache_path=cache_path,
        max_concurrent_requests=concurrency,
        show_progress=False,
    )
    requests = [LLMRequest.from_prompt(f"{tag} example {i}", max_tokens=64) for i in range(calls)]
    started = time.perf_counter()
    responses = asyncio.run(client.generate(requests))
    seconds = time.perf_counter() - started
    client.close()
    print(json.dumps({"delivered": sum(r.ok for r in responses), "seconds": seconds}))


def checkout(ref: str, *paths: str) -> Path:
    """Those paths of a git ref, unpacked into a temporary folder."""
    target = Path(tempfile.mkdtemp(prefix=f"jf-{ref}-"))
    archive = subprocess.run(
        ["git", "archive", ref, *paths], cwd=ROOT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def pipeline_run(ref: str, base_url: str) -> dict[str, Any]:
    """`judgeforge run -c` of the binary example (generation only) in a copy of `ref`; its figures."""
    import yaml

    project = checkout(ref, "src", "conf", "examples", "data", "pyproject.toml")
    config = yaml.safe_load(
        (project / "examples/binary_single_customer_complaint.yaml").read_text()
    )
    config["run_steps"] = ["data_generation"]
    generation = config["data_generation"]
    # run.yaml sits in the project folder, so the seed path is written from there (the example's
    # own `../data/...` is relative to examples/)
    generation["source_data"]["dataset"]["csv"]["file_path"] = "data/01_raw/customer_messages.csv"
    generation["llm"] = {
        "provider": "openai",
        "model": "bench-model",
        "embedding_model": "text-embedding-3-small",
        "base_url": base_url,
    }
    generation["generation"].update(
        {
            "total_examples": 300,
            "examples_per_call": 1,
            "async_config": {"max_concurrent_requests": 64},
        }
    )
    generation["data_quality_metrics"]["enabled"] = False
    generation["output"]["push_to_hub"] = False
    (project / "run.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    control(base_url, "reset")
    environment = {
        **os.environ,
        "PYTHONPATH": str(project / "src"),
        "OPENAI_API_KEY": "sk-bench",
        "KEDRO_DISABLE_TELEMETRY": "1",
    }
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "judgeforge", "run", "-c", "run.yaml"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        env=environment,
    )
    seconds = time.perf_counter() - started
    report_file = project / "data/08_reporting/generation_report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else {}
    lines = result.stderr.strip().splitlines() or result.stdout.strip().splitlines() or [""]
    return {
        "exit": result.returncode,
        "seconds": seconds,
        "delivered": report.get("delivered_total"),
        "server": control(base_url, "stats"),
        "last_line": lines[-1][-200:],
    }


def report(
    label: str, runs: list[dict[str, Any]], calls: int, ideal: float, show_429s: bool
) -> None:
    """One line of medians."""
    rates = [run["delivered"] / run["seconds"] / ideal for run in runs]
    delivered = [run["delivered"] for run in runs]
    throttled = [run["server"]["status_counts"].get("429", 0) for run in runs]
    line = (
        f"  {label:<9} delivered {statistics.median(delivered):>6.0f}/{calls}  "
        f"rate/ideal median {statistics.median(rates):.3f} {[round(r, 3) for r in rates]}"
    )
    if show_429s:
        line += f"  429s median {statistics.median(throttled):.0f} ({statistics.median(throttled) / calls:.2f}/call)"
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", default="main", help="git ref to compare with ('' for none)")
    parser.add_argument("--bucket-rate", type=float, default=300.0)
    parser.add_argument(
        "--bucket-latency", type=float, default=0.05, help="seconds per admitted call"
    )
    parser.add_argument("--only", choices=["bucket", "random", "plain", "pipeline"], default=None)
    args = parser.parse_args()
    if args.only == "pipeline":
        server = ["--bucket-rate", "20", "--bucket-capacity", "2"]
        print("pipeline: binary example, 300 examples one per call, C=64, bucket 20/s", flush=True)
        with loopback_server(0.05, *server, "--json-examples") as base_url:
            for ref in ["HEAD", *([args.baseline] if args.baseline else [])]:
                run = pipeline_run(ref, base_url)
                counts = run["server"]["status_counts"]
                print(
                    f"  {ref:<9} exit {run['exit']}  {run['seconds']:.1f} s  delivered {run['delivered']}/300  "
                    f"200s {counts.get('200', 0)}  429s {counts.get('429', 0)}  last line: {run['last_line']}",
                    flush=True,
                )
        return
    sources = {"this tree": ROOT / "src"}
    if args.baseline:
        sources[args.baseline] = checkout(args.baseline, "src") / "src"

    def compare(
        title: str,
        latency: float,
        server_options: list[str],
        concurrency: int,
        calls: int,
        ideal: float,
        show_429s: bool,
    ) -> None:
        print(
            f"{title}: latency {latency:g} s, C={concurrency}, {calls} calls, ideal {ideal:g}/s",
            flush=True,
        )
        with loopback_server(latency, *server_options) as base_url:
            for label, source in sources.items():
                runs = [
                    measure(source, base_url, concurrency, calls, f"{label}{r}")
                    for r in range(args.repeats)
                ]
                report(label, runs, calls, ideal, show_429s)

    rate = args.bucket_rate
    if args.only in (None, "bucket"):
        compare(
            f"token bucket {rate:g}/s",
            args.bucket_latency,
            ["--bucket-rate", str(rate)],
            256,
            3000,
            rate,
            True,
        )
    if args.only in (None, "random"):
        compare(
            "20% random 429, Retry-After 1 s",
            LATENCY,
            ["--rate-429", "0.2", "--retry-after", "1"],
            64,
            1600,
            64 / LATENCY,
            True,
        )
    if args.only in (None, "plain"):
        compare("no 429", LATENCY, [], 256, 6400, 256 / LATENCY, False)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6])
    else:
        main()
