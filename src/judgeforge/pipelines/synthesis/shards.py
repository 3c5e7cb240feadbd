"""Sharded synthesis (generation.shards > 1): the plan dealt into parts, one node per part, and the merge.

Each shard generates its part of the plan as an unsharded run would (its quotas are the
examples its calls ask for) and writes its own datasets, so the shards can run on different
workers. A killed run, run again, sends only the calls of the shards that did not finish: a
finished shard's calls all answer from the response cache (llm/cache.py). The merge drops what two
shards both made and anything that repeats a holdout row, then refills the classes left short
with new calls, within what the shards left of each class's call budget
(generation.max_attempts_per_example). What is still missing after that is a shortfall, judged
by generation.max_shortfall_fraction like any run.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

import pandas as pd

from judgeforge.config.data_generation import (
    DatasetColumns,
    GenerationConfig,
)
from judgeforge.config.labels import label_key
from judgeforge.llm.errors import DeliveryShortfall, shortfall
from judgeforge.pipelines.synthesis.generation import (
    RejectReason,
    call_budget,
    fingerprint,
    single_row,
)
from judgeforge.pipelines.synthesis.nodes import (
    GenerationInputs,
    SynthesisError,
    generate_examples,
    rejected_answers,
    total_usage,
)
from judgeforge.pipelines.synthesis.plan import PAIR_CLASS, PLAN_CALL_ID, planned_examples
from judgeforge.pipelines.synthesis.prompts import example_shape
from judgeforge.schema import REJECT_REASON, ROW_ID

# What each shard node writes, in the order the merge node reads them.
SHARD_OUTPUTS = (
    "synthetic_examples",
    "synthetic_rejects",
    "generation_stats",
    "generation_debug_log",
)
# The column of a plan part that names its shard.
SHARD = "shard"
# The round name of the merge's refill calls (their ids: <plan_call_id>/refill/<i>).
REFILL = "refill"


def shard_namespace(index: int) -> str:
    """Return the namespace of shard `index` (1-based): its node and datasets are `shard_<index>.*`."""
    return f"shard_{index}"


def split_generation_plan(
    plan: pd.DataFrame, generation: GenerationConfig
) -> tuple[pd.DataFrame, ...]:
    """Return the plan in generation.shards parts, its calls dealt in turn so each part asks about as much of each class.

    Each part names its shard in a SHARD column (what a failing shard says it is).
    """
    turn = pd.RangeIndex(len(plan)) % generation.shards
    return tuple(
        plan[turn == index].assign(**{SHARD: shard_namespace(index + 1)}).reset_index(drop=True)
        for index in range(generation.shards)
    )


def plan_digest(plan: pd.DataFrame) -> str:
    """Return a digest of a plan's call ids, seeds and counts (which calls a shard was given)."""
    material = plan[[PLAN_CALL_ID, "seed", "examples"]].to_json(orient="values")
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def generate_shard(
    plan: pd.DataFrame, *inputs: Any
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any], list[dict[str, Any]]]:
    """Return one shard's (rows, rejects, stats, debug records); raise when it fell short beyond tolerance.

    `inputs` are GenerationInputs' fields, in order. A shard that raises writes nothing; a re-run
    generates it again, and every call answered before (in this shard or one that finished)
    comes from the response cache.
    """
    quotas = planned_examples(plan)
    started = time.time()
    rows, rejects, stats, debug = generate_examples(plan, quotas, GenerationInputs(*inputs))
    gap = stats["shortfall"]
    if not gap["within_tolerance"]:
        reasons = rejects[REJECT_REASON].value_counts().to_dict()
        cause = f"rejects by reason: {reasons}" if reasons else "the call budget ran out"
        if stats["first_request_error"]:
            cause += f"; first failed request: {stats['first_request_error']}"
        raise DeliveryShortfall(
            f"synthesis {plan[SHARD].iloc[0]} delivered {len(rows)} of {sum(quotas.values())} "
            f"examples, short by {gap['short_by']} (generation.max_shortfall_fraction allows "
            f"{gap['allowed']}); {cause}. Every paid answer is kept: a re-run sends only the calls "
            "that have no answer yet (the shards that finished answer from the cache)"
        )
    # wall-clock times (not a timer): shards on different workers are compared in the merge
    times = {"started_at": started, "finished_at": time.time()}
    return rows, rejects, {**stats, **times, "plan_digest": plan_digest(plan)}, debug


def merge_shards(
    quotas: dict[str, int], plan: pd.DataFrame, *inputs_and_shard_outputs: Any
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any], list[dict[str, Any]]]:
    """Return the shards as one result (rows, rejects, stats, debug records): no example twice, none from the holdout, quotas refilled.

    `inputs_and_shard_outputs` are GenerationInputs' fields, in order, then each shard's
    SHARD_OUTPUTS, shard after shard.
    """
    count = len(fields(GenerationInputs))
    inputs = GenerationInputs(*inputs_and_shard_outputs[:count])
    shard_outputs = inputs_and_shard_outputs[count:]
    metric, columns, generation = inputs.metric, inputs.columns, inputs.generation
    size = len(SHARD_OUTPUTS)
    shards = [shard_outputs[i : i + size] for i in range(0, len(shard_outputs), size)]
    require_current_shards(plan, generation, [stats for _, _, stats, _ in shards])
    example_fields = example_shape(metric.input_format, columns.features).fields
    names = {label_key(c.label): c.name for c in metric.class_labels or []}
    kept, dropped, seen = drop_repeats(
        [rows for rows, *_ in shards],
        list(shards[0][1].columns),
        {fingerprint(row, example_fields) for row in inputs.holdout.to_dict("records")},
        example_fields,
        columns.label_column,
        names,
    )
    spent = {key: sum(s["calls_per_class"].get(key, 0) for _, _, s, _ in shards) for key in quotas}
    delivered = kept[columns.label_column].value_counts()
    missing = {key: quota - int(delivered.get(key, 0)) for key, quota in quotas.items()}
    budgets = {
        key: call_budget(quota, generation.examples_per_call, generation.max_attempts_per_example)
        - spent[key]
        for key, quota in quotas.items()
    }
    parts = list(shards)
    refill = refill_plan(plan, missing, budgets, generation.examples_per_call)
    if len(refill):
        parts.append(
            generate_examples(
                refill,
                {key: n for key, n in missing.items() if n > 0},
                inputs,
                budgets,
                seen,
                REFILL,
            )
        )
        kept = pd.concat([kept, parts[-1][0]], ignore_index=True)
    rows = kept.drop(columns=ROW_ID).reset_index(drop=True)
    rows.insert(0, ROW_ID, [f"syn-{i:06d}" for i in range(len(rows))])
    rejects = pd.concat([*(p[1] for p in parts), dropped], ignore_index=True)
    stats = merged_stats(
        quotas, rows, rejects, dropped, [p[2] for p in parts], len(shards), generation, columns
    )
    return rows, rejects, stats, [record for p in parts for record in p[3]]


def require_current_shards(
    plan: pd.DataFrame, generation: GenerationConfig, stats: Sequence[Mapping[str, Any]]
) -> None:
    """Raise when a shard's datasets were made for another plan (left by an earlier, different run)."""
    expected = [plan_digest(part) for part in split_generation_plan(plan, generation)]
    stale = [
        index
        for index, (digest, shard) in enumerate(zip(expected, stats), 1)
        if shard.get("plan_digest") != digest
    ]
    if stale:
        names = ", ".join(shard_namespace(index) for index in stale)
        raise SynthesisError(
            f"the datasets of {names} were made for another generation plan (an earlier run with "
            "other settings): run the whole synthesis pipeline to generate them again"
        )


def drop_repeats(
    shard_rows: Sequence[pd.DataFrame],
    reject_columns: Sequence[str],
    holdout_prints: set[str],
    fields: Sequence[str],
    label: str,
    class_names: Mapping[str, str],
) -> tuple[pd.DataFrame, pd.DataFrame, set[str]]:
    """Return (rows kept, the rest as rejects, fingerprints kept): a text another shard made first, or a holdout text, is dropped."""
    kept: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    made_by: dict[str, int] = {}  # fingerprint → the shard that made it first
    for index, rows in enumerate(shard_rows, 1):
        for row in rows.to_dict("records"):
            print_ = fingerprint(row, fields)
            if print_ in holdout_prints:
                reason, detail = RejectReason.HOLDOUT_LEAK, "same text as a holdout (test) row"
            elif print_ in made_by:
                reason = RejectReason.DUPLICATE
                detail = f"same text as an example {shard_namespace(made_by[print_])} made"
            else:
                made_by[print_] = index
                kept.append(row)
                continue
            dropped.append(
                {
                    "call_id": row["call_id"],
                    "class": class_names.get(str(row[label]), str(row[label])),
                    REJECT_REASON: reason.value,
                    "detail": detail,
                    **{f: row[f] for f in fields},
                    "raw_answer": "",
                    "generator": row["generator"],
                }
            )
    columns = list(shard_rows[0].columns) if shard_rows else []
    kept_rows = pd.DataFrame(kept, columns=columns)
    return kept_rows, pd.DataFrame(dropped, columns=reject_columns), set(made_by)


def refill_plan(
    plan: pd.DataFrame, missing: Mapping[str, int], budgets: Mapping[str, int], per_call: int
) -> pd.DataFrame:
    """Return calls asking for what each class lacks: copies of its plan rows, as many as its budget allows.

    A near-miss pair's row is copied made single for the class that lacks examples, so a class
    that has its quota is not asked again.
    """
    rows = []
    records = plan.to_dict("records")
    for key, count in missing.items():
        of_class = [
            single_row(row, key)
            for row in records
            if key in (str(row["class"]), str(row.get(PAIR_CLASS) or ""))
        ]
        calls = min(math.ceil(max(count, 0) / per_call), max(budgets.get(key, 0), 0))
        for index in range(calls if of_class else 0):
            asked = min(per_call, count - index * per_call)
            rows.append({**of_class[index % len(of_class)], "examples": asked})
    return pd.DataFrame(rows, columns=plan.columns)


def merged_stats(
    quotas: Mapping[str, int],
    rows: pd.DataFrame,
    rejects: pd.DataFrame,
    dropped: pd.DataFrame,
    parts: Sequence[Mapping[str, Any]],
    shards: int,
    generation: GenerationConfig,
    columns: DatasetColumns,
) -> dict[str, Any]:
    """Return the generation stats of shards (and the refill, the last part when there are more parts than shards) as one run's."""
    delivered = rows[columns.label_column].value_counts()
    by_generator: dict[str, list[dict[str, Any]]] = {}
    for part in parts:
        for name, numbers in part["by_generator"].items():
            by_generator.setdefault(name, []).append(numbers)
    failed = [p["first_request_error"] for p in parts if p["first_request_error"]]
    return {
        "provider": parts[0]["provider"],
        "model": parts[0]["model"],
        "rounds": max(p["rounds"] for p in parts),
        "calls_per_class": {
            key: sum(p["calls_per_class"].get(key, 0) for p in parts) for key in quotas
        },
        "surplus_examples": sum(p["surplus_examples"] for p in parts),
        "missing_per_class": {
            key: max(0, quota - int(delivered.get(key, 0))) for key, quota in quotas.items()
        },
        "usage": total_usage(p["usage"] for p in parts),
        "by_generator": {
            name: {
                "calls": sum(n["calls"] for n in numbers),
                "delivered": int((rows["generator"] == name).sum()),
                "rejected": int((rejected_answers(rejects)["generator"] == name).sum()),
                "usage": total_usage(n["usage"] for n in numbers),
            }
            for name, numbers in by_generator.items()
        },
        # from the first shard's start to the last one's end (they may run at once), then the refill
        "wall_time_s": round(
            max(p["finished_at"] for p in parts[:shards])
            - min(p["started_at"] for p in parts[:shards])
            + sum(p["wall_time_s"] for p in parts[shards:]),
            3,
        ),
        "shortfall": shortfall(sum(quotas.values()), len(rows), generation.max_shortfall_fraction),
        "first_request_error": failed[0] if failed else None,
        "shards": [
            {
                "shard": shard_namespace(index),
                "calls": sum(p["calls_per_class"].values()),
                "wall_time_s": p["wall_time_s"],
            }
            for index, p in enumerate(parts[:shards], 1)
        ],
        "refill_calls": sum(sum(p["calls_per_class"].values()) for p in parts[shards:]),
        "dropped_at_merge": {
            reason.value: int((dropped[REJECT_REASON] == reason.value).sum())
            for reason in (RejectReason.DUPLICATE, RejectReason.HOLDOUT_LEAK)
        },
    }
