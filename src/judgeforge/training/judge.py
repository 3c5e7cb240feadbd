"""A judge: base model (+ LoRA adapter) that scores rows into labels and class probabilities."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from judgeforge.config.training import TrainingConfig, template_placeholders
from judgeforge.errors import UserError
from judgeforge.training.formatting import (
    AnswerSpace,
    check_template_columns,
    prompt_token_ids,
    render_prompt,
    uses_chat_template,
)
from judgeforge.training.loading import (
    base_model_source,
    load_adapter,
    load_base_model,
    load_tokenizer,
    with_lora,
)
from judgeforge.training.runtime import RuntimeOptions
from judgeforge.training.scoring import answer_token_ids, class_probabilities

JUDGE_CONFIG_FILE = "judge_config.json"
ADAPTER_CONFIG_FILE = "adapter_config.json"
PREDICTION_COLUMN = "prediction"
SCORING_BATCH_SIZE = 8


def probability_column(label: str) -> str:
    """Return the name of the column that holds a class's probability."""
    return f"probability_{label}"


@dataclass
class Judge:
    """A causal LM that answers a prompt template with one of a metric's classes."""

    model: Any
    tokenizer: Any
    config: TrainingConfig

    def __post_init__(self) -> None:
        self.answer_space = AnswerSpace.from_metric(self.config.metric)
        self.chat = uses_chat_template(self.tokenizer)
        self.answer_token_ids = answer_token_ids(
            self.tokenizer, self.answer_space.answers, self.chat
        )

    @classmethod
    def zero_shot(cls, config: TrainingConfig) -> Judge:
        """Return the base model as a judge, without fine-tuning."""
        source = base_model_source(config.model)
        tokenizer = load_tokenizer(source, use_unsloth_tokenizer=False)
        return cls(
            _on_inference_device(load_base_model(source, _inference_dtype())), tokenizer, config
        )

    @classmethod
    def trainable(cls, config: TrainingConfig, options: RuntimeOptions) -> Judge:
        """Return a judge whose model is the base model with a trainable LoRA adapter."""
        source = base_model_source(config.model)
        tokenizer = load_tokenizer(source, options.use_unsloth_tokenizer)
        model = with_lora(load_base_model(source, options.model_dtype), config.model)
        return cls(model, tokenizer, config)

    @classmethod
    def load(cls, path: str | Path) -> Judge:
        """Return the judge saved under `path` (adapter, tokenizer and config), on its base model."""
        directory = Path(path)
        if not (directory / JUDGE_CONFIG_FILE).is_file():
            raise FileNotFoundError(
                f"{directory} is not a saved judge: it has no {JUDGE_CONFIG_FILE}"
            )
        saved = json.loads((directory / JUDGE_CONFIG_FILE).read_text())
        config = TrainingConfig.model_validate(saved["config"])
        tokenizer = load_tokenizer(str(directory), use_unsloth_tokenizer=False)
        model = load_base_model(base_model_source(config.model), _inference_dtype())
        if (directory / ADAPTER_CONFIG_FILE).is_file():
            model = load_adapter(model, str(directory))
        return cls(_on_inference_device(model), tokenizer, config)

    def save(self, path: str | Path) -> None:
        """Write the adapter, the tokenizer and the resolved config under `path`."""
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        resolved = {
            "config": self.config.model_dump(mode="json"),
            "base_model": base_model_source(self.config.model),
            "labels": list(self.answer_space.labels),
            "answers": list(self.answer_space.answers),
            "answer_token_ids": self.answer_token_ids,
            "uses_chat_template": self.chat,
        }
        (directory / JUDGE_CONFIG_FILE).write_text(json.dumps(resolved, indent=2) + "\n")

    @property
    def labels(self) -> tuple[str, ...]:
        """Return the class labels, in the order of the probability columns."""
        return self.answer_space.labels

    def score_prompts(self, prompts: Sequence[str]) -> np.ndarray:
        """Return an (n_prompts, n_classes) array of class probabilities for rendered prompts."""
        if len(prompts) == 0:
            return np.zeros((0, len(self.labels)))
        return class_probabilities(
            self.model,
            [prompt_token_ids(self.tokenizer, prompt, self.chat) for prompt in prompts],
            self.answer_token_ids,
            pad_token_id=self.tokenizer.pad_token_id,
            max_length=self.config.training.max_seq_length,
            batch_size=SCORING_BATCH_SIZE,
        )

    def predict(self, rows: pd.DataFrame | Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        """Return one row per input: the predicted label and a probability per class."""
        table = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
        check_template_columns(
            self.config.prompt_template, [str(c) for c in table.columns], "the rows to predict"
        )
        prompts = [
            render_prompt(self.config.prompt_template, row)
            for row in table.to_dict(orient="records")
        ]
        return self.predictions_frame(self.score_prompts(prompts), index=table.index)

    def predictions_frame(
        self, probabilities: np.ndarray, index: pd.Index | None = None
    ) -> pd.DataFrame:
        """Return the predicted label (the most probable class) and the per-class probabilities."""
        frame = pd.DataFrame(
            {probability_column(label): probabilities[:, i] for i, label in enumerate(self.labels)},
            index=index,
        )
        best = probabilities.argmax(axis=1) if len(probabilities) else np.zeros(0, dtype=int)
        frame.insert(0, PREDICTION_COLUMN, [self.labels[i] for i in best])
        return frame


def _inference_dtype() -> torch.dtype:
    return (
        torch.bfloat16
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        else torch.float32
    )


def _on_inference_device(model: Any) -> Any:
    return model.to("cuda") if torch.cuda.is_available() else model


READERS = {
    # a blank line is a row with an empty text, reported, not silently dropped
    ".csv": lambda p: pd.read_csv(p, skip_blank_lines=False),
    ".parquet": pd.read_parquet,
    ".jsonl": lambda p: pd.read_json(p, lines=True),
}
WRITERS = {
    ".csv": lambda df, p: df.to_csv(p, index=False),
    ".parquet": lambda df, p: df.to_parquet(p, index=False),
    ".jsonl": lambda df, p: df.to_json(p, orient="records", lines=True),
}


class PredictInputError(UserError, ValueError):
    """Rows to predict that cannot be scored as given (file type, no rows, blank texts)."""


def predict_command(model_dir: str | Path, input_path: str | Path, output_path: str | Path) -> int:
    """Score every row of a CSV/Parquet/JSONL file with a saved judge; write rows + predictions; return the row count."""
    source, target = Path(input_path), Path(output_path)
    for path, formats in ((source, READERS), (target, WRITERS)):
        if path.suffix.lower() not in formats:
            raise PredictInputError(f"{path}: unsupported file type; use one of {', '.join(formats)}")
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such input file")
    if not source.read_bytes().strip():
        raise PredictInputError(f"{source}: the input file is empty: no rows to score")
    rows = READERS[source.suffix.lower()](source)
    if rows.empty:
        raise PredictInputError(f"{source}: the input file has no rows to score")
    judge = Judge.load(model_dir)
    _check_no_blank_texts(rows, template_placeholders(judge.config.prompt_template), source)
    predictions = judge.predict(rows)
    target.parent.mkdir(parents=True, exist_ok=True)
    WRITERS[target.suffix.lower()](pd.concat([rows, predictions], axis=1), target)
    return len(rows)


def _check_no_blank_texts(rows: pd.DataFrame, columns: list[str], source: Path) -> None:
    """Raise naming the rows whose prompt columns are empty or whitespace only (a judge cannot score them)."""
    for column in (c for c in columns if c in rows.columns):
        blank = rows[column].map(lambda v: v is None or (isinstance(v, float) and np.isnan(v)) or not str(v).strip())
        if blank.any():
            numbers = [str(i + 1) for i in np.flatnonzero(blank.to_numpy())]
            shown = ", ".join(numbers[:10]) + (f" and {len(numbers) - 10} more" if len(numbers) > 10 else "")
            raise PredictInputError(f"{source}: column {column} is empty or whitespace only in row(s) {shown}: fill or remove them")
