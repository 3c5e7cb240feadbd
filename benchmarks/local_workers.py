"""Local provider decoding one job in one process or dealt to worker processes (llm.local_workers).

Each arm runs in its own process (a fresh model and fresh workers), warms up with one job that
starts its workers, then times `--repeats` jobs of `--calls` seeded complaint prompts that each
write up to `--max-tokens` tokens. CPU seconds include the worker processes'.

    python benchmarks/local_workers.py --calls 16,32,64 --workers 1,2 --threads 2 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def arm(calls: int, workers: int, threads: int, repeats: int, max_tokens: int) -> dict:
    """Time `repeats` jobs of `calls` calls in this process, with `workers` processes."""
    import psutil
    import torch

    from judgeforge.llm.local import LocalChat
    from judgeforge.llm.types import LLMRequest

    def cpu_seconds() -> float:
        children = psutil.Process().children(recursive=True)
        return time.process_time() + sum(
            c.cpu_times().user + c.cpu_times().system for c in children
        )

    torch.set_num_threads(threads)
    requests = [
        LLMRequest.from_prompt(
            f"Write a long complaint about late parcel number {i}.",
            max_tokens=max_tokens,
            temperature=0.9,
            seed=i,
        )
        for i in range(calls)
    ]
    chat = LocalChat(workers=workers, show_progress=False)
    chat.generate_batch([LLMRequest.from_prompt("hi", max_tokens=1)] * calls)  # model and workers
    runs = []
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), cpu_seconds()
        answers = chat.generate_batch(requests)
        seconds = time.perf_counter() - started
        tokens = sum(answer.output_tokens for answer in answers)
        runs.append(
            {"seconds": seconds, "cpu_seconds": cpu_seconds() - cpu_started, "tokens": tokens}
        )
    chat.close()
    return {
        "tokens_per_s": statistics.median(r["tokens"] / r["seconds"] for r in runs),
        "tokens_per_cpu_s": statistics.median(r["tokens"] / r["cpu_seconds"] for r in runs),
        "runs_tokens_per_s": [round(r["tokens"] / r["seconds"], 1) for r in runs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="16,32,64")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--arm", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        calls, workers = args.arm
        print(json.dumps(arm(calls, workers, args.threads, args.repeats, args.max_tokens)))
        return
    for calls in (int(c) for c in args.calls.split(",")):
        for workers in (int(w) for w in args.workers.split(",")):
            done = subprocess.run(
                [sys.executable, __file__, "--arm", str(calls), str(workers)]
                + ["--threads", str(args.threads), "--repeats", str(args.repeats)]
                + ["--max-tokens", str(args.max_tokens)],
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                f"{calls} calls, {workers} process(es), {args.threads} threads: "
                f"{result['tokens_per_s']:.1f} tokens/s (runs {result['runs_tokens_per_s']}), "
                f"{result['tokens_per_cpu_s']:.1f} tokens/CPU-s",
                flush=True,
            )


if __name__ == "__main__":
    main()
