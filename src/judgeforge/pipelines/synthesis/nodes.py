"""Pure functions of the synthesis pipeline: plan quotas, generate, assemble the DatasetDict."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import datasets
import pandas as pd

from judgeforge.config.data_generation import (
    DatasetColumns,
    GenerationConfig,
    LLMConfig,
    MetricConfig,
    OutputConfig,
    SamplingConfig,
)
from judgeforge.config.diversity import DiversityConfig
from judgeforge.config.labels import label_key
from judgeforge.errors import UserError
from judgeforge.llm.errors import DeliveryShortfall, shortfall
from judgeforge.pipelines.synthesis.generation import SURPLUS, ExampleGenerator, RejectReason
from judgeforge.pipelines.synthesis.plan import largest_remainder, row_plan_columns
from judgeforge.pipelines.synthesis.prompts import example_shape
from judgeforge.schema import REJECT_REASON, ROW_ID, SEED_SOURCE, SOURCE, SYNTHETIC_SOURCE

log = logging.getLogger(__name__)


class SynthesisError(UserError, ValueError):
    """A synthesis set-up that cannot produce what was asked."""


def plan_class_quotas(holdout: pd.DataFrame, metric: MetricConfig, generation: GenerationConfig, columns: DatasetColumns) -> dict[str, int]:
    """Return how many synthetic examples each class gets; they sum to total_examples exactly."""
    if not metric.class_labels:
        raise SynthesisError("data_generation.metric.class_labels is empty: synthesis needs the classes (set them, or derive them from llmaj_source_prompt)")
    keys = metric.label_keys()
    if generation.label_distribution:
        by_name = {c.name: label_key(c.label) for c in metric.class_labels}
        shares = {key: 0.0 for key in keys}
        for name, share in generation.label_distribution.items():
            shares[by_name.get(name, label_key(name))] += share
    else:
        counts = holdout[columns.label].value_counts() if columns.label and len(holdout) else pd.Series(dtype=int)
        if counts.sum() == 0:
            raise SynthesisError("generation.label_distribution is empty and the holdout has no labels to infer it from: set label_distribution")
        shares = {key: float(counts.get(key, 0)) for key in keys}
        for key in (k for k, share in shares.items() if share == 0):
            log.warning("class %s has no holdout rows, so the inferred distribution gives it no synthetic examples", key)
    return largest_remainder(shares, generation.total_examples)


@dataclass(frozen=True)
class GenerationInputs:
    """What generation reads besides its plan and quotas: the real rows, the metric, the settings and the clients.

    The generation nodes receive them as the datasets of the synthesis pipeline's
    GENERATION_DATASETS, in the order of these fields.
    """

    enhancement: pd.DataFrame
    holdout: pd.DataFrame
    metric: MetricConfig
    llm: LLMConfig
    generation: GenerationConfig
    diversity: DiversityConfig
    columns: DatasetColumns
    sampling: SamplingConfig
    generator_llm: Any
    generator_pool: dict[str, Any] | None = None
    segments: pd.DataFrame | None = None

    def example_generator(self) -> ExampleGenerator:
        """Return the generator that sends these inputs' calls."""
        shape = example_shape(self.metric.input_format, self.columns.features)
        return ExampleGenerator(
            self.generator_llm, self.metric, self.llm, self.generation, self.diversity, shape, self.enhancement,
            self.holdout, self.columns.label_column, self.sampling.seed, self.generator_pool, self.segments,
        )


def generate_synthetic_examples(plan: pd.DataFrame, quotas: dict[str, int], *inputs: Any) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any], list[dict[str, Any]]]:
    """Return (accepted synthetic rows with their plan values, rejected answers, generation stats, debug prompt records); `inputs` are GenerationInputs' fields, in order."""
    return generate_examples(plan, quotas, GenerationInputs(*inputs))


def generate_examples(
    plan: pd.DataFrame,
    quotas: dict[str, int],
    inputs: GenerationInputs,
    budgets: dict[str, int] | None = None,
    taken: Iterable[str] = (),
    refill: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any], list[dict[str, Any]]]:
    """Return (accepted synthetic rows with their plan values, rejected answers, generation stats, debug prompt records).

    `budgets`, `taken` and `refill` go to `ExampleGenerator.run` (the shard merge refills what it dropped).
    """
    columns, diversity, generator_llm = inputs.columns, inputs.diversity, inputs.generator_llm
    label = columns.label_column
    generator = inputs.example_generator()
    started = time.perf_counter()
    result = generator.run(plan, quotas, budgets, taken, refill)
    synthetic = pd.DataFrame(result.accepted, columns=[*columns.features, label, "call_id", *row_plan_columns(diversity)])
    synthetic.insert(0, ROW_ID, [f"syn-{i:06d}" for i in range(len(synthetic))])
    rejects = pd.DataFrame(result.rejects, columns=["call_id", "class", REJECT_REASON, "detail", *columns.features, "raw_answer", "generator"])
    faults = rejected_answers(rejects)
    usages = {name: generator.clients[name].usage.as_dict() for name in result.calls_per_generator}
    delivered = synthetic[label].value_counts()
    stats = {
        "provider": generator_llm.provider,
        "model": generator_llm.model,
        "rounds": result.rounds,
        "calls_per_class": result.calls_per_class,
        "surplus_examples": result.surplus,
        "missing_per_class": {key: max(0, quota - int(delivered.get(key, 0))) for key, quota in quotas.items()},
        "usage": total_usage(usages.values()) if usages else generator_llm.usage.as_dict(),
        "by_generator": {
            name: {
                "calls": calls,
                "delivered": int((synthetic["generator"] == name).sum()),
                "rejected": int((faults["generator"] == name).sum()),
                "usage": usages[name],
            }
            for name, calls in result.calls_per_generator.items()
        },
        "wall_time_s": round(time.perf_counter() - started, 3),
    }
    stats["shortfall"] = shortfall(sum(quotas.values()), len(synthetic), inputs.generation.max_shortfall_fraction)
    failed = rejects[rejects[REJECT_REASON] == RejectReason.REQUEST_FAILED]
    stats["first_request_error"] = str(failed["detail"].iloc[0]) if len(failed) else None
    missing = {key: n for key, n in stats["missing_per_class"].items() if n}
    if missing:
        log.warning("attempt budget spent before every quota was met; missing per class: %s", missing)
    return synthetic, rejects, stats, result.debug_records


def rejected_answers(rejects: pd.DataFrame) -> pd.DataFrame:
    """Return the rows of a rejects table that were rejected (not the SURPLUS examples set aside with them)."""
    return rejects[rejects[REJECT_REASON] != SURPLUS]


def require_delivery(synthetic: pd.DataFrame, generation_report: dict[str, Any]) -> pd.DataFrame:
    """Return the synthetic rows when the run delivered what was asked within tolerance (else raise)."""
    gap = generation_report["shortfall"]
    if gap["within_tolerance"]:
        return synthetic
    requested, delivered = generation_report["requested_total"], generation_report["delivered_total"]
    reasons = {reason: n for reason, n in generation_report["rejected_by_reason"].items() if n}
    cause = f"rejects by reason: {reasons}" if reasons else "no rejects: the call budget ran out"
    if generation_report.get("first_request_error"):
        cause += f"; first failed request: {generation_report['first_request_error']}"
    raise DeliveryShortfall(
        f"synthesis delivered {delivered} of {requested} examples, short by {gap['short_by']} "
        f"(generation.max_shortfall_fraction {gap['max_shortfall_fraction']:g} allows {gap['allowed']}); "
        f"{cause}. The report and every paid answer are kept: a re-run continues from the cache"
    )


def total_usage(usages: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Return the sum of several clients' usage dicts (priced only when every one is)."""
    usages = list(usages)
    return {
        key: all(u[key] for u in usages) if isinstance(value, bool) else round(sum(u[key] for u in usages), 6)
        for key, value in usages[0].items()
    }


def assemble_train_and_test(
    synthetic: pd.DataFrame,
    enhancement: pd.DataFrame,
    holdout: pd.DataFrame,
    columns: DatasetColumns,
    sampling: SamplingConfig,
    output: OutputConfig,
) -> tuple[pd.DataFrame, datasets.DatasetDict]:
    """Return the train table and the DatasetDict {train: synthetic (+ seed rows), test: holdout}."""
    label = columns.label_column
    keep = [ROW_ID, *columns.features, label, SOURCE]
    parts = [synthetic.assign(**{SOURCE: SYNTHETIC_SOURCE})[keep]]
    if sampling.include_enhancement_in_train:
        parts.append(enhancement.assign(**{SOURCE: SEED_SOURCE, ROW_ID: "seed-" + enhancement[ROW_ID].astype(str)})[keep])
    train = pd.concat(parts, ignore_index=True).astype(str)
    test = holdout.assign(**{SOURCE: SEED_SOURCE})[keep].astype(str)
    splits = datasets.DatasetDict(
        {
            output.dataset.splits.train: datasets.Dataset.from_pandas(train, preserve_index=False),
            output.dataset.splits.test: datasets.Dataset.from_pandas(test, preserve_index=False),
        }
    )
    return train, splits


def build_generation_report(
    quotas: dict[str, int], synthetic: pd.DataFrame, rejects: pd.DataFrame, stats: dict[str, Any], columns: DatasetColumns
) -> dict[str, Any]:
    """Return requested vs delivered per class, rejects by reason, calls, cache hits, tokens and cost.

    Surplus examples (valid, past a quota) are counted in the stats' `surplus_examples`, not as rejects.
    """
    label = columns.label_column
    delivered = synthetic[label].value_counts()
    rejected = rejected_answers(rejects)
    by_reason = rejected[REJECT_REASON].value_counts()
    return {
        "requested_total": int(sum(quotas.values())),
        "delivered_total": len(synthetic),
        "per_class": {key: {"requested": quota, "delivered": int(delivered.get(key, 0))} for key, quota in quotas.items()},
        "rejected_total": len(rejected),
        "rejected_by_reason": {reason.value: int(by_reason.get(reason, 0)) for reason in RejectReason},
        **stats,
    }
