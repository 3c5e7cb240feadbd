"""Decoding steps of the local provider's ContinuousBatch at long and short contexts, this code beside an older one.

Each shape is `rows x context`: `rows` random prompts of `context - 7 * i` tokens (at least half
of `context`, so the batch is left-padded as in real use) prefilled together, then `--steps`
greedy decoding steps of all rows at once, timed in CPU seconds of the process (one torch
thread). Sides run in alternating processes (PYTHONPATH picks the code) and must generate the
same tokens; the script says so.

    python benchmarks/local_decode_cache.py --before /path/to/old/src
        [--shapes 8x1200,16x60] [--steps 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(rows: int, context: int, steps: int) -> dict:
    """Prefill then `steps` decoding steps through the ContinuousBatch on PYTHONPATH."""
    import torch

    from judgeforge.llm.local import ActiveRow, ContinuousBatch, load_causal_lm
    from judgeforge.llm.types import LLMRequest
    from judgeforge.models.embedded import embedded_model_dir

    torch.set_num_threads(1)
    loaded = load_causal_lm(embedded_model_dir())
    generator = torch.Generator().manual_seed(0)
    prompts = [
        torch.randint(
            100, 20_000, (max(context // 2, context - 7 * i),), generator=generator
        ).tolist()
        for i in range(rows)
    ]
    request = LLMRequest.from_prompt("-", max_tokens=steps + 1)
    batch = ContinuousBatch(loaded.model, loaded.tokenizer.pad_token_id)
    with torch.inference_mode():
        started = time.process_time()
        batch.admit([ActiveRow(i, request, len(p), None) for i, p in enumerate(prompts)], prompts)
        prefill = time.process_time() - started
        started = time.process_time()
        for _ in range(steps):
            batch.step()
        decoding = time.process_time() - started
    return {
        "prefill_cpu_s": prefill,
        "decode_cpu_s": decoding,
        "tokens": [row.tokens for row in batch.rows],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="src folder of the code to compare against")
    parser.add_argument("--shapes", default="8x1200,16x60")
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        rows, context = map(int, args.worker.split("x"))
        print(json.dumps(measure(rows, context, args.steps)))
        return
    sides = {"after": str(ROOT / "src")} | ({"before": args.before} if args.before else {})
    for shape in args.shapes.split(","):
        rows = int(shape.split("x")[0])
        runs: dict[str, list[dict]] = {side: [] for side in sides}
        for _ in range(args.repeats):
            for side, src in sides.items():
                env = {**os.environ, "PYTHONPATH": src, "HF_HUB_OFFLINE": "1"}
                command = [sys.executable, __file__, "--worker", shape, "--steps", str(args.steps)]
                done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
                runs[side].append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"{shape} (rows x context), {args.steps} steps, medians of {args.repeats}:")
        for side, results in runs.items():
            rates = [rows * args.steps / r["decode_cpu_s"] for r in results]
            step = statistics.median(r["decode_cpu_s"] / args.steps for r in results)
            print(
                f"  {side:>6}: {statistics.median(rates):6.1f} generated tokens/CPU-s "
                f"({', '.join(f'{x:.1f}' for x in rates)}), {step:.3f} CPU-s per step",
                flush=True,
            )
        tokens = {json.dumps(r["tokens"]) for results in runs.values() for r in results}
        print(f"  same tokens on every run and side: {len(tokens) == 1}", flush=True)


if __name__ == "__main__":
    main()
