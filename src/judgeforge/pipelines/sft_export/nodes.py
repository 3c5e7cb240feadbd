"""The judge's training examples in the formats other fine-tuning tools read.

Every record is one judge example exactly as judgeforge trains it (training.nodes.
format_judge_examples): the prompt is training.prompt_template filled with the row, the answer
is the label's answer (true/false, or the class index for multi-class), so a model fine-tuned
on an export elsewhere learns the same judge.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from datasets import DatasetDict

from judgeforge.config.data_generation import MetricConfig, OutputConfig, SFTFormat
from judgeforge.config.training import TrainingConfig
from judgeforge.pipelines.training.nodes import ANSWER, PROMPT, format_judge_examples
from judgeforge.training.formatting import AnswerSpace


def system_message(metric: MetricConfig, answers: AnswerSpace) -> str:
    """Return the system message of an export: what the judge decides and the answers it may give."""
    choices = ", ".join(
        answer if answer == label else f"{answer} ({label})"
        for label, answer in zip(answers.labels, answers.answers)
    )
    return f"{metric.description or metric.name} Answer with one of: {choices}."


def sft_records(
    examples: pd.DataFrame, sft_format: SFTFormat, system: str | None
) -> list[dict[str, Any]]:
    """Return one record per judge example in `sft_format` (with the system message when given)."""
    records = []
    for prompt, answer in zip(examples[PROMPT], examples[ANSWER]):
        if sft_format in ("messages", "openai"):
            turns = [{"role": "system", "content": system}] if system else []
            turns += [
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": answer},
            ]
            records.append({"messages": turns})
        elif sft_format == "instruction":
            records.append(
                {"instruction": f"{system}\n\n{prompt}" if system else prompt, "response": answer}
            )
        else:  # alpaca: the task as instruction, the row as input
            records.append(
                {
                    "instruction": system or prompt,
                    "input": prompt if system else "",
                    "output": answer,
                }
            )
    return records


def export_sft_formats(
    dataset: DatasetDict, metric: MetricConfig, output: OutputConfig, training: dict | None
) -> dict[str, pd.DataFrame]:
    """Return <format>/<split> → records of each format in output.sft_formats (none when it is empty)."""
    if not output.sft_formats:
        return {}
    config = TrainingConfig.model_validate(training)
    splits = zip(
        (config.dataset.split, config.dataset.test_split_name),
        format_judge_examples(dataset, config),
    )
    system = (
        system_message(metric, AnswerSpace.from_metric(config.metric)) if output.sys_msg else None
    )
    return {
        f"{sft_format}/{split}": pd.DataFrame(sft_records(examples, sft_format, system))
        for split, examples in splits
        for sft_format in output.sft_formats
    }
