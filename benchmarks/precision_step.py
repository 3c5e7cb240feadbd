"""A prefill and a decoding step of the embedded model in each precision the local provider can
load it in, side by side.

Each run is a fresh process with JUDGEFORGE_LOCAL_PRECISION set, the model loaded as the local
provider loads it (`load_causal_lm`), on `--threads` torch threads. It times, medians of
`--inner` after a warm-up:

- the prefill of one prompt of `--prompt` tokens into the provider's chunked cache;
- a decoding step of `--rows` rows over `--context` cached tokens (the rows prefilled first);

and the precisions' runs alternate `--repeats` times, so machine load hits each alike.

    PYTHONPATH=src .venv/bin/python benchmarks/precision_step.py --precisions int8 bfloat16 \\
        --repeats 3 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

PRECISION_ENV = "JUDGEFORGE_LOCAL_PRECISION"


def median_seconds(run: Callable[[], object], times: int) -> float:
    """Median wall seconds of `run()` over `times` calls, after one warm-up call."""
    run()
    seconds = []
    for _ in range(times):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def measure(prompt: int, rows: int, context: int, inner: int, threads: int) -> dict:
    """Prefill and step milliseconds of the model as this process's environment loads it."""
    import torch

    from judgeforge.llm.kv_cache import chunked_cache
    from judgeforge.llm.local import ContinuousBatch, load_causal_lm
    from judgeforge.models.embedded import embedded_model_dir

    torch.set_num_threads(threads)
    batch = ContinuousBatch(load_causal_lm(embedded_model_dir()).model, pad_token_id=0)
    generator = torch.Generator().manual_seed(0)

    def forward(ids: torch.Tensor, mask: torch.Tensor, cache: object) -> None:
        with torch.inference_mode():
            batch._forward(ids, mask, cache)  # the local provider's own forward pass

    prompt_ids = torch.randint(100, 40_000, (1, prompt), generator=generator)
    prefill = median_seconds(
        lambda: forward(prompt_ids, torch.ones_like(prompt_ids), chunked_cache()), inner
    )
    cache = chunked_cache()
    mask = torch.ones(rows, context, dtype=torch.long)
    forward(torch.randint(100, 40_000, (rows, context), generator=generator), mask, cache)
    state = {"mask": mask}

    def step() -> None:
        state["mask"] = torch.cat([state["mask"], torch.ones(rows, 1, dtype=torch.long)], dim=1)
        token = torch.randint(100, 40_000, (rows, 1), generator=generator)
        forward(token, state["mask"], cache)

    return {"prefill_ms": 1e3 * prefill, "step_ms": 1e3 * median_seconds(step, inner)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precisions", nargs="+", default=["int8", "bfloat16"])
    parser.add_argument("--prompt", type=int, default=780, help="prompt tokens to prefill")
    parser.add_argument("--rows", type=int, default=14)
    parser.add_argument("--context", type=int, default=1150, help="cached tokens of each row")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs per precision")
    parser.add_argument("--inner", type=int, default=5, help="timed calls per run")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = (args.prompt, args.rows, args.context, args.inner, args.threads)
    if args.worker:
        print(json.dumps(measure(*shape)))
        return
    runs: dict[str, list[dict]] = {precision: [] for precision in args.precisions}
    for _ in range(args.repeats):
        for precision in args.precisions:
            done = subprocess.run(
                [sys.executable, __file__, "--worker", *_shape_args(args)],
                env={**os.environ, PRECISION_ENV: precision, "HF_HUB_OFFLINE": "1"},
                capture_output=True,
                text=True,
                check=True,
            )
            runs[precision].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(precision, runs[precision][-1], file=sys.stderr, flush=True)
    print(
        f"\n{args.prompt}-token prefill; step of {args.rows} rows x {args.context} cached "
        f"tokens; {args.threads} thread(s); medians of {args.repeats} runs"
    )
    print("| precision | prefill ms (runs) | median | step ms (runs) | median |")
    print("|---|---|---|---|---|")
    for precision, results in runs.items():
        cells = []
        for key in ("prefill_ms", "step_ms"):
            values = [r[key] for r in results]
            cells += [" / ".join(f"{v:.1f}" for v in values), f"{statistics.median(values):.1f}"]
        print(f"| {precision} | {' | '.join(cells)} |")


def _shape_args(args: argparse.Namespace) -> list[str]:
    return [
        *("--prompt", str(args.prompt), "--rows", str(args.rows)),
        *("--context", str(args.context), "--inner", str(args.inner)),
        *("--threads", str(args.threads)),
    ]


if __name__ == "__main__":
    main()
