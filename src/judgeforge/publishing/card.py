"""The dataset card (README.md) pushed with a generated dataset: metric, how it was made, counts, checks."""

from __future__ import annotations

import json
from typing import Any

import datasets
import yaml

from judgeforge.config.data_generation import DataGenerationConfig, MetricConfig

# Diagnostics summary parts shown on the card; the rest (lengths, UMAP) stays in the report.
DIAGNOSTICS_KEYS = ("status", "rows", "class_balance", "drift", "near_duplicates", "diversity")


def front_matter(metric: MetricConfig, splits: list[str]) -> str:
    """Return the card's YAML header: tags and the parquet file of each split."""
    header = {
        "pretty_name": metric.name,
        "task_categories": ["text-classification"],
        "tags": ["judgeforge", "synthetic", "llm-as-a-judge"],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"data/{s}-*"} for s in splits],
            }
        ],
    }
    return f"---\n{yaml.safe_dump(header, sort_keys=False)}---\n"


def class_counts(
    dataset: datasets.DatasetDict, label: str, keys: list[str]
) -> dict[str, dict[str, int]]:
    """Return rows per class per split (plus the split's total)."""
    counts = {}
    for split, rows in dataset.items():
        values = rows[label] if label in rows.column_names else []
        counts[split] = {key: sum(1 for v in values if v == key) for key in keys} | {
            "total": rows.num_rows
        }
    return counts


def dataset_card(
    dataset: datasets.DatasetDict,
    metric: MetricConfig,
    config: DataGenerationConfig,
    labelling_report: dict[str, Any],
    diagnostics_summary: dict[str, Any],
) -> str:
    """Return the markdown card of a generated dataset."""
    columns = config.source_data.dataset.columns
    label = columns.label_column
    keys = metric.label_keys()
    counts = class_counts(dataset, label, keys)
    names = {key: c.name for key, c in zip(keys, metric.class_labels or [])}
    lines = [
        front_matter(metric, list(dataset)),
        f"# {config.output.dataset.repo_name}",
        "",
        f"Training data for the **{metric.name}** metric ({metric.type}, input format `{metric.input_format}`), made by judgeforge.",
        "",
        (metric.description or "").strip(),
        "",
        "## Classes",
        "",
        f"Feature columns: {', '.join(f'`{f}`' for f in columns.features)}; label column: `{label}` (label values as text).",
        "",
        "| class | label | rubric |",
        "|---|---|---|",
        *[
            f"| {c.name} | `{key}` | {(c.rubric or '').strip()} |"
            for key, c in zip(keys, metric.class_labels or [])
        ],
        "",
        "## Rows per class and split",
        "",
        "| split | " + " | ".join(f"{names[k]} (`{k}`)" for k in keys) + " | total |",
        "|---|" + "---|" * (len(keys) + 1),
        *[
            f"| {split} | " + " | ".join(str(c[k]) for k in keys) + f" | {c['total']} |"
            for split, c in counts.items()
        ],
        "",
        "## How it was made",
        "",
        "```yaml",
        yaml.safe_dump(config_summary(config), sort_keys=False).rstrip(),
        "```",
    ]
    if labelling_report.get("status") == "ok":
        lines += ["", "## LLM-judge labels", "", *labelling_lines(labelling_report)]
    if diagnostics_summary.get("status") == "ok":
        shown = {
            key: diagnostics_summary[key] for key in DIAGNOSTICS_KEYS if key in diagnostics_summary
        }
        lines += [
            "",
            "## Data-quality diagnostics",
            "",
            "```json",
            json.dumps(shown, indent=1, default=str),
            "```",
        ]
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f'splits = load_dataset("{config.output.hub.organization}/{config.output.dataset.repo_name}")',
        "```",
        "",
    ]
    return "\n".join(lines)


def config_summary(config: DataGenerationConfig) -> dict[str, Any]:
    """Return the settings that shaped the data (no secrets: base URLs and keys are left out)."""
    generation, sampling, labelling = (
        config.generation,
        config.source_data.sampling,
        config.labelling,
    )
    summary: dict[str, Any] = {
        "source": config.source_data.dataset.source_type,
        "generator": "/".join(config.generator),
        "total_examples": generation.total_examples,
        "examples_per_call": generation.examples_per_call,
        "context_examples": generation.context_examples,
        "label_distribution": generation.label_distribution or "inferred from the holdout split",
        "enhancement_fraction": sampling.enhancement_fraction,
        "include_enhancement_in_train": sampling.include_enhancement_in_train,
        "seed": sampling.seed,
        "labelling": {"enabled": labelling.enabled, "label_only_mode": labelling.label_only_mode},
    }
    if labelling.enabled:
        summary["labelling"] |= {
            "judge": "/".join(config.judge),
            "disagreement_policy": labelling.disagreement_policy,
        }
    if labelling.label_only_mode:
        for key in (
            "generator",
            "total_examples",
            "examples_per_call",
            "context_examples",
            "label_distribution",
            "include_enhancement_in_train",
        ):
            summary.pop(key)
    return summary


def labelling_lines(report: dict[str, Any]) -> list[str]:
    """Return the card lines summarising the judge's labels and its agreement with the generator."""
    overall = report["agreement"]["overall"]
    lines = [
        f"Judge: `{report['judge']['provider']}/{report['judge']['model']}`; {report['rows_judged']} rows judged, {report['invalid_answers']} without a valid answer."
    ]
    if overall["compared"]:
        lines.append(
            f"Agreement with the generator's labels: {overall['agree']}/{overall['compared']} ({overall['rate']:.1%})."
        )
        policy = report["disagreement_policy"]
        lines.append(
            f"Disagreement policy `{policy['policy']}`: {policy['relabelled']} synthetic rows relabelled, {policy['dropped']} dropped."
        )
    return lines
