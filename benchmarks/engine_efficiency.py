"""Request engine efficiency against the loopback OpenAI-compatible server (not a test).

efficiency = examples/s ÷ (concurrency × examples_per_call / latency), one example per call.
The server runs in its own process; the client writes every answer to a fresh SQLite cache,
as a real run does. Also: a run with 20% of answers 429 (all delivered? any twice?) and the
time to re-run a finished 2,000-call generation entirely from the cache.

    .venv/bin/python benchmarks/engine_efficiency.py [--repeats 3] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.loopback import control, loopback_server
from judgeforge.llm import LLMClient, LLMRequest, build_llm_client


@dataclass(frozen=True)
class Run:
    """One measured workload."""

    concurrency: int
    calls: int
    seconds: float
    ideal_per_second: float
    server: dict[str, Any]
    retries: int

    @property
    def efficiency(self) -> float:
        return self.calls / self.seconds / self.ideal_per_second


def workload(calls: int, tag: str) -> list[LLMRequest]:
    """Distinct one-example requests."""
    return [LLMRequest.from_prompt(f"{tag} example {i}", max_tokens=64) for i in range(calls)]


def measure(
    base_url: str,
    concurrency: int,
    calls: int,
    latency: float,
    cache_dir: Path,
    tag: str,
    adaptive: bool = True,
) -> Run:
    """Generate `calls` requests at `concurrency` through a fresh cache and time it."""
    control(base_url, "reset")
    client = build_llm_client(
        "openai",
        "bench-model",
        base_url=base_url,
        max_concurrent_requests=concurrency,
        cache_path=cache_dir / f"{tag}.sqlite",
        show_progress=False,
        max_retries=20,
        adaptive_concurrency=adaptive,
    )
    requests = workload(calls, tag)
    started = time.perf_counter()
    responses = asyncio.run(client.generate(requests))
    seconds = time.perf_counter() - started
    client.close()
    failed = sum(not r.ok for r in responses)
    if failed:
        raise RuntimeError(f"{failed} requests failed at concurrency {concurrency}")
    return Run(
        concurrency,
        calls,
        seconds,
        concurrency / latency,
        control(base_url, "stats"),
        client.usage.retries,
    )


def cached_rerun_seconds(base_url: str, cache_dir: Path, calls: int = 2000) -> tuple[float, int]:
    """Seconds to re-run a finished generation from the cache, and how many requests it sent."""
    requests = workload(calls, "rerun")

    def build() -> LLMClient:
        return build_llm_client(
            "openai",
            "bench-model",
            base_url=base_url,
            max_concurrent_requests=256,
            cache_path=cache_dir / "rerun.sqlite",
            show_progress=False,
        )

    first = build()
    asyncio.run(first.generate(requests))
    first.close()
    control(base_url, "reset")
    started = time.perf_counter()
    again = build()
    responses = asyncio.run(again.generate(requests))
    again.close()
    assert all(r.from_cache for r in responses)
    return time.perf_counter() - started, control(base_url, "stats")["requests"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--calls-per-slot", type=int, default=25, help="calls = concurrency × this")
    args = parser.parse_args()
    cache_dir = Path(tempfile.mkdtemp(prefix="jf-bench-"))

    with loopback_server(args.latency) as base_url:
        for concurrency in (8, 64, 256):
            runs = [
                measure(
                    base_url,
                    concurrency,
                    concurrency * args.calls_per_slot,
                    args.latency,
                    cache_dir,
                    f"c{concurrency}r{r}",
                )
                for r in range(args.repeats)
            ]
            ratios = [run.efficiency for run in runs]
            print(
                f"concurrency {concurrency:>3}  calls {runs[0].calls:>5}  efficiency median "
                f"{statistics.median(ratios):.3f}  runs {[round(x, 3) for x in ratios]}  "
                f"server max in flight {max(r.server['max_in_flight'] for r in runs)}",
                flush=True,
            )
        seconds, sent = cached_rerun_seconds(base_url, cache_dir)
        print(
            f"re-run of a finished 2,000-call generation from cache: {seconds:.2f} s, {sent} requests sent"
        )

    with loopback_server(
        args.latency, "--rate-429", "0.2", "--retry-after", str(args.latency)
    ) as base_url:
        for adaptive in (True, False):
            run = measure(base_url, 256, 6400, args.latency, cache_dir, f"t429{adaptive}", adaptive)
            stats = run.server
            print(
                f"20% 429 (Retry-After {args.latency:g}s), concurrency 256, adaptive={adaptive}: "
                f"efficiency {run.efficiency:.3f}  delivered {stats['delivered']}/{run.calls}  "
                f"answered twice {stats['answered_twice']}  retries {run.retries}  "
                f"status counts {stats['status_counts']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
