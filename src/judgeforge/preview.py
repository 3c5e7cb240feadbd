"""`judgeforge preview`: build the generation plan, send its first calls, and estimate the whole run.

The plan comes from the project's own pipelines (ingestion and synthesis up to
`build_generation_plan`, in one Kedro session whose parameters are the run YAML). The first
n plan rows are sent as synthesis sends them (same requests, same cache: the full run later
finds them there and does not pay twice). The estimate covers the plan's first-round calls:

- prompt tokens: every planned request is built (not sent) and its characters counted; they
  become tokens at the rate the provider reported for the preview calls ("measured"), or, when
  the preview reported no tokens (all served from cache, or a server that does not count),
  at 1 token per 3.5 characters ("approximation"). No provider tokenizer is used: none of the
  remote ones ships offline with judgeforge.
- completion tokens: the preview calls' mean answer length × calls (or the answer token limit
  per call when nothing was measured: an upper bound).
- cost: llm.types.DEFAULT_PRICES (list prices as of PRICES_AS_OF), per generator; with
  `async_config.batch` at the provider's batch price. The preview's own calls are sent online
  even then (a batch may take hours), into the same cache entries the batch run reads.
- wall time: the preview's time per wave of concurrent calls × the waves the plan needs.

Building the plan grows the topic tree first when `diversity.topic_tree` asks for one and
none was saved for its settings: those calls are paid once, saved in the catalog, reused by
the full run, and not part of the estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.pipeline import Node, Pipeline

from judgeforge.config import RunConfig, load_run_config
from judgeforge.llm.providers import PROVIDERS
from judgeforge.llm.types import CHARS_PER_TOKEN, DEFAULT_PRICES, PRICES_AS_OF
from judgeforge.pipelines.synthesis.nodes import GenerationInputs, generate_examples
from judgeforge.pipelines.synthesis.plan import PLAN_CALL_ID, planned_examples

PLAN_STAGES = "ingestion+synthesis"


@dataclass
class GeneratorEstimate:
    """What the plan's first-round calls through one generator are expected to use."""

    generator: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    token_method: str
    cost_usd: float | None
    wall_time_s: float | None


@dataclass
class GenerationPreview:
    """The plan, the rows its first calls produced, and the estimate of the whole run."""

    plan: pd.DataFrame
    rows: pd.DataFrame
    rejects: pd.DataFrame
    estimates: list[GeneratorEstimate] = field(default_factory=list)
    prices_as_of: str = PRICES_AS_OF

    @property
    def total(self) -> dict[str, Any]:
        """Return the estimate summed over generators (cost None when a generator has no price)."""
        costs = [e.cost_usd for e in self.estimates]
        times = [e.wall_time_s for e in self.estimates]
        return {
            "calls": sum(e.calls for e in self.estimates),
            "prompt_tokens": sum(e.prompt_tokens for e in self.estimates),
            "completion_tokens": sum(e.completion_tokens for e in self.estimates),
            "cost_usd": None if None in costs else round(sum(costs), 4),
            # generators take their turns one after another within a round
            "wall_time_s": None if None in times else round(sum(times), 1),
        }


def keep_metric(metric: Any) -> Any:
    """Return the resolved metric, so that the preview's run hands it back."""
    return metric


def preview_generation(
    config_path: str | Path,
    calls: int = 5,
    env: str | None = None,
    project_path: str | Path | None = None,
) -> GenerationPreview:
    """Build the plan of a run YAML, send its first `calls` calls, and estimate the full run."""
    from kedro.framework.project import pipelines
    from kedro.framework.session import KedroSession
    from kedro.runner import SequentialRunner

    from judgeforge.sdk import open_run_project, run_parameters

    config = load_run_config(config_path)
    if config.data_generation is None:
        raise ValueError(f"{config_path}: has no data_generation section")
    project = open_run_project(config_path, project_path)
    # the preview's own calls go out online (into the same cache entries) even with batch on
    online = config.model_copy(deep=True)
    online.data_generation.generation.async_config.batch = False  # type: ignore[union-attr]
    with KedroSession.create(
        project_path=project.path,
        env=env,
        runtime_params=run_parameters(online, project),
        conf_source=str(project.conf_source),
    ) as session:
        catalog = session.load_context().catalog
        to_plan = pipelines[PLAN_STAGES].to_outputs("generation_plan")
        keep = Pipeline(
            [Node(keep_metric, "resolved_metric", "preview_metric", name="keep_metric")]
        )
        metric = SequentialRunner().run(to_plan + keep, catalog)["preview_metric"].load()
        return run_preview(
            config,
            metric,
            catalog.load("generation_plan"),
            catalog.load("enhancement_table"),
            catalog.load("holdout_table"),
            catalog.load("generator_llm"),
            catalog.load("generator_pool"),
            calls,
            catalog.load("document_segments"),
        )


def run_preview(
    config: RunConfig,
    metric: Any,
    plan: pd.DataFrame,
    enhancement: pd.DataFrame,
    holdout: pd.DataFrame,
    generator_llm: Any,
    generator_pool: dict[str, Any],
    calls: int,
    segments: pd.DataFrame | None = None,
) -> GenerationPreview:
    """Send the plan's first `calls` rows (no retries) and estimate the whole plan from them."""
    generation_config = config.data_generation
    assert generation_config is not None
    once = generation_config.generation.model_copy(update={"max_attempts_per_example": 1.0})
    inputs = GenerationInputs(
        enhancement=enhancement,
        holdout=holdout,
        metric=metric,
        llm=generation_config.llm,
        generation=once,
        diversity=generation_config.diversity,
        columns=generation_config.source_data.dataset.columns,
        sampling=generation_config.source_data.sampling,
        generator_llm=generator_llm,
        generator_pool=generator_pool,
        segments=segments,
    )
    head = plan.head(calls)
    quotas = planned_examples(head)
    rows, rejects, stats, _ = generate_examples(head, quotas, inputs)
    builder = inputs.example_generator()
    requests = {
        row[PLAN_CALL_ID]: builder.planned_call(row).request for row in plan.to_dict("records")
    }
    characters = {
        call_id: sum(len(m.content) for m in request.messages)
        for call_id, request in requests.items()
    }
    # each call's answer limit follows its own fields' budget (pipelines.synthesis.generation)
    answer_limits = {call_id: request.max_tokens for call_id, request in requests.items()}
    concurrency = once.async_config.max_concurrent_requests
    estimates = [
        estimate_generator(
            name,
            plan[plan.generator == name][PLAN_CALL_ID].map(characters),
            head[head.generator == name][PLAN_CALL_ID].map(characters),
            stats["by_generator"].get(name),
            float(plan[plan.generator == name][PLAN_CALL_ID].map(answer_limits).mean()),
            concurrency,
            batch_price_factor(name) if once.async_config.batch else 1.0,
        )
        for name in plan.generator.unique()
    ]
    return GenerationPreview(plan=plan, rows=rows, rejects=rejects, estimates=estimates)


def estimate_generator(
    name: str,
    planned_chars: pd.Series,
    previewed_chars: pd.Series,
    measured: dict[str, Any] | None,
    answer_token_limit: float,
    concurrency: int,
    price_factor: float = 1.0,
) -> GeneratorEstimate:
    """Return one generator's estimate from its planned prompts and what its preview calls measured.

    `price_factor` scales the list price (a batch API bills a share of it).
    """
    usage = (measured or {}).get("usage", {})
    sent = (measured or {}).get("calls", 0)
    paid = usage.get("succeeded", 0) - usage.get("cache_hits", 0)
    if usage.get("input_tokens") and paid > 0 and previewed_chars.sum():
        tokens_per_char = usage["input_tokens"] / previewed_chars.sum()
        method = "measured: the provider's token counts of the preview calls"
    else:
        tokens_per_char = 1 / CHARS_PER_TOKEN
        method = f"approximation: 1 token per {CHARS_PER_TOKEN} characters"
    calls = len(planned_chars)
    answer = (
        usage["output_tokens"] / paid
        if usage.get("output_tokens") and paid > 0
        else answer_token_limit
    )
    prompt_tokens = round(planned_chars.sum() * tokens_per_char)
    completion_tokens = round(answer * calls)
    price = DEFAULT_PRICES.get(name.split("/", 1)[1])
    cost = (
        None
        if price is None
        else round(price.cost(prompt_tokens, completion_tokens) * price_factor, 4)
    )
    wave = (
        usage.get("wall_time_s", 0) / math.ceil(sent / concurrency)
        if sent and usage.get("wall_time_s")
        else None
    )
    wall = None if wave is None else round(wave * math.ceil(calls / concurrency), 1)
    return GeneratorEstimate(name, calls, prompt_tokens, completion_tokens, method, cost, wall)


def batch_price_factor(generator: str) -> float:
    """The share of the list price the batch API of a `provider/model` generator bills."""
    return PROVIDERS[generator.split("/", 1)[0]].batch_price_factor or 1.0


def print_preview(preview: GenerationPreview, console: Any = None) -> None:
    """Print the preview rows with their plan values, then the estimate, as rich tables."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    shown = preview.rows.drop(columns=["row_id", "call_id", "prompt_variant"], errors="ignore")
    rows = Table(title=f"{len(preview.rows)} rows from the first calls of the plan")
    for column in shown.columns:
        rows.add_column(column, overflow="fold")
    for record in shown.astype(str).to_dict("records"):
        rows.add_row(*record.values())
    console.print(rows)
    if len(preview.rejects):
        console.print(
            f"{len(preview.rejects)} answers rejected: {preview.rejects['reason'].value_counts().to_dict()}"
        )
    estimate = Table(
        title=f"Estimate of the full run ({len(preview.plan)} planned calls; prices as of {preview.prices_as_of})"
    )
    for column in (
        "generator",
        "calls",
        "prompt tokens",
        "completion tokens",
        "cost USD",
        "wall time s",
        "tokens",
    ):
        estimate.add_column(column)
    for e in preview.estimates:
        estimate.add_row(
            e.generator,
            str(e.calls),
            str(e.prompt_tokens),
            str(e.completion_tokens),
            "no price" if e.cost_usd is None else f"{e.cost_usd:.4f}",
            "not measured" if e.wall_time_s is None else f"{e.wall_time_s:.1f}",
            e.token_method,
        )
    console.print(estimate)
    console.print(
        "Retries of short calls come on top (at most max_attempts_per_example × the calls per class)."
    )
