"""A judge: a model that scores rows into labels and class probabilities, with one of three heads.

- `generate`: a causal LM (+ LoRA) answers the class's answer text; the class logits are those of
  each answer's first token at the answer position.
- `classify`: the same causal LM with a sequence-classification head (+ LoRA); one forward pass,
  the head's logits over the classes.
- `encoder`: a small encoder (default the embedded MiniLM) fine-tuned with a classification head on
  its mean-pooled token states (how sentence encoders make their sentence vectors).

The causal heads read the rendered prompt template (`generate` as the user's message of a chat,
after a system message of the judge's own that names the answers). The encoder reads the row's
feature columns without the template's wording (the same for every row, it would be averaged into
every pooled vector and make short rows several times longer): a single column's bare text, or
`name: value` per column joined by the tokenizer's separator token. Either way each field is cut so that the
whole fits `max_seq_length` (`context` first).
Probabilities are the softmax of the logits divided by the judge's fitted temperature.
A judge loaded on a CPU scores in the precision `scoring_precision` picks: by default (null
`model.int8_inference`) the whole model in bfloat16 on a CPU with AMX (`bfloat16_products_are_fast`),
else the encoder and classify heads' body linear layers in int8 on a CPU with an int8 dot product
(`judgeforge.llm.quantized`: a scale per output channel and per token, exact int32 sums, so a row's
result does not depend on the rows beside it; the output head stays float), else float32; `true`
asks for int8 layers, `false` for float32. The model changes at the first scoring call, so that a
loaded judge that is only saved again (publishing) writes its float32 weights.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from judgeforge.config.training import TrainingConfig, template_placeholders
from judgeforge.errors import UserError
from judgeforge.llm.quantized import (
    WITHOUT_INT8_DOT_PRODUCT,
    bfloat16_products_are_fast,
    contiguous_output_head_inputs,
    int8_products_are_fast,
    quantize_linears,
)
from judgeforge.training.calibration import probabilities_at
from judgeforge.training.encoder import HEAD_FILE
from judgeforge.training.formatting import (
    FIELD_SEPARATOR,
    AnswerSpace,
    ChatPrompt,
    check_template_columns,
    feature_template,
    prompt_and_answer_token_ids,
    prompt_token_ids,
    prompts_token_ids,
    render_prompt,
    render_prompts_within,
    uses_chat_template,
)
from judgeforge.training.loading import (
    ModelLoadError,
    base_model_source,
    encoder_source,
    load_base_model,
    load_mean_pooled_classifier,
    load_merged_adapter,
    load_sequence_classifier,
    load_tokenizer,
    with_lora,
)
from judgeforge.training.runtime import RuntimeOptions, use_free_cores
from judgeforge.training.scoring import (
    REFERENCE_PROMPT,
    answer_logits,
    answer_token_ids,
    causal_classifier_logits,
    classifier_logits,
)

logger = logging.getLogger(__name__)

JUDGE_CONFIG_FILE = "judge_config.json"
ADAPTER_CONFIG_FILE = "adapter_config.json"
PREDICTION_COLUMN = "prediction"
GENERATE, CLASSIFY, ENCODER = "generate", "classify", "encoder"
# Heads whose trained judges kept their macro-F1 (within 0.01) and ECE in int8 on 1,000 real
# rows (BENCHMARKS.md, issue 12: round 4 for the encoder, rounds 5 and 6 for classify).
INT8_BY_DEFAULT = frozenset({ENCODER, CLASSIFY})
# How a judge scores on a CPU (`Judge.precision`).
FLOAT32, INT8, BFLOAT16 = "float32", "int8", "bfloat16"
HEADS = (GENERATE, CLASSIFY, ENCODER)
# Rows per forward pass: large enough to keep the CPU's matrix units busy on sentence-length rows.
SCORING_BATCH_SIZE = 32


def probability_column(label: str) -> str:
    """Return the name of the column that holds a class's probability."""
    return f"probability_{label}"


@dataclass
class Judge:
    """A model with one of the heads `generate`, `classify`, `encoder` and its prompt template."""

    model: Any
    tokenizer: Any
    config: TrainingConfig
    head: str = GENERATE
    temperature: float = 1.0
    # The generate head's system message; None: the answers the metric allows (a saved judge
    # keeps the one it was trained with).
    system_prompt: str | None = None
    # How scoring runs on a CPU (`scoring_precision`, set by `load`): float32, int8 (the body's
    # linear layers) or bfloat16 (the whole model).
    precision: str = FLOAT32
    _lowered: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self.answer_space = AnswerSpace.from_metric(self.config.metric)
        if self.system_prompt is None:
            self.system_prompt = self.answer_space.instruction
        self.chat = (
            ChatPrompt(self.system_prompt)
            if self.head == GENERATE and uses_chat_template(self.tokenizer)
            else None
        )
        self.answer_token_ids = (
            answer_token_ids(self.tokenizer, self.answer_space.answers, self.chat)
            if self.head == GENERATE
            else []
        )
        self.input_template = (
            feature_template(
                self.config.prompt_template, self.tokenizer.sep_token or FIELD_SEPARATOR
            )
            if self.head == ENCODER
            else self.config.prompt_template
        )
        empty = {name: "" for name in template_placeholders(self.input_template)}
        frame_tokens = len(self.prompt_ids(render_prompt(self.input_template, empty)))
        # What the row's fields may take of max_seq_length: the rest is the input template's own
        # text, special tokens, the chat markup and, when training a generate head, the answer.
        self.field_budget = max(
            0, self.config.training.max_seq_length - frame_tokens - self._answer_tokens()
        )
        self.shared_prefix_ids = self._shared_prefix_ids()

    def _shared_prefix_ids(self) -> list[int]:
        """Return the tokens every row's input starts with (a causal head runs them once per call).

        They come from the template with two different values, not from the rows scored together,
        so a row is split the same way alone or in any batch.
        """
        if self.head == ENCODER:
            return []  # every token of an encoder sees the whole row
        names = template_placeholders(self.input_template)
        probes = [render_prompt(self.input_template, dict.fromkeys(names, v)) for v in "ab"]
        return list(os.path.commonprefix(self.inputs_ids(probes)))

    def _answer_tokens(self) -> int:
        if self.head != GENERATE:
            return 0
        prompt = len(prompt_token_ids(self.tokenizer, REFERENCE_PROMPT, self.chat))
        return max(
            len(prompt_and_answer_token_ids(self.tokenizer, REFERENCE_PROMPT, answer, self.chat))
            - prompt
            for answer in self.answer_space.answers
        )

    @classmethod
    def zero_shot(cls, config: TrainingConfig) -> Judge:
        """Return the base model as a generate judge, without fine-tuning."""
        source = base_model_source(config.model)
        tokenizer = load_tokenizer(source, use_unsloth_tokenizer=False)
        return cls(
            _on_inference_device(load_base_model(source, _inference_dtype())), tokenizer, config
        )

    @classmethod
    def trainable(cls, config: TrainingConfig, options: RuntimeOptions, head: str) -> Judge:
        """Return an untrained judge of the given head: LoRA on the base model, or the encoder with a new head."""
        labels = len(AnswerSpace.from_metric(config.metric).labels)
        if head == ENCODER:
            source = encoder_source(config.model)
            tokenizer = load_tokenizer(source, use_unsloth_tokenizer=False)
            model = load_mean_pooled_classifier(source, labels, options.model_dtype)
            return cls(model, tokenizer, config, head)
        source = base_model_source(config.model)
        tokenizer = load_tokenizer(source, options.use_unsloth_tokenizer)
        if head == CLASSIFY:
            base = load_sequence_classifier(
                source, labels, tokenizer.pad_token_id, options.model_dtype
            )
            return cls(with_lora(base, config.model, "SEQ_CLS"), tokenizer, config, head)
        return cls(
            with_lora(load_base_model(source, options.model_dtype), config.model), tokenizer, config
        )

    @classmethod
    def load(cls, path: str | Path, int8: bool | None = None) -> Judge:
        """Return the judge saved under `path`, LoRA merged into its base model for fast inference.

        On a CPU it scores in the precision `scoring_precision` picks from `int8` (None: its
        config's `model.int8_inference`); on a GPU in bfloat16 or float32.
        """
        directory = Path(path)
        if not (directory / JUDGE_CONFIG_FILE).is_file():
            raise FileNotFoundError(
                f"{directory} is not a saved judge: it has no {JUDGE_CONFIG_FILE}"
            )
        saved = json.loads((directory / JUDGE_CONFIG_FILE).read_text())
        config = TrainingConfig.model_validate(saved["config"])
        head = saved.get("head", GENERATE)
        tokenizer = load_tokenizer(str(directory), use_unsloth_tokenizer=False)
        adapter = (directory / ADAPTER_CONFIG_FILE).is_file()
        source = saved["base_model"] if adapter else str(directory)
        if head == GENERATE:
            model = load_base_model(source, _inference_dtype())
        elif head == ENCODER:
            if not (directory / HEAD_FILE).is_file():
                raise ModelLoadError(
                    f"{directory} is not a complete encoder judge: it has no {HEAD_FILE}"
                )
            model = load_mean_pooled_classifier(source, len(saved["labels"]), _inference_dtype())
        else:
            model = load_sequence_classifier(
                source, len(saved["labels"]), tokenizer.pad_token_id, _inference_dtype()
            )
        if adapter:
            model = load_merged_adapter(model, str(directory))
        model = _on_inference_device(model)
        if head == GENERATE:  # the one head that reads only the rows' last positions
            contiguous_output_head_inputs(model)
        precision = FLOAT32
        if _on_cpu(model):
            precision = scoring_precision(
                head, config.model.int8_inference if int8 is None else int8
            )
            logger.info("judge: scoring in %s on this CPU", precision)
        return cls(
            model,
            tokenizer,
            config,
            head,
            saved.get("temperature", 1.0),
            saved.get("system_prompt"),
            precision,
        )

    def save(self, path: str | Path) -> None:
        """Write the weights (the LoRA adapter, or the whole model), the tokenizer and the resolved config."""
        if self._lowered:
            raise ValueError(
                f"this judge has scored in {self.precision}, and its float32 weights are gone: "
                "save it before it scores, or load it with int8=False"
            )
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        resolved = {
            "config": self.config.model_dump(mode="json"),
            "head": self.head,
            "base_model": encoder_source(self.config.model)
            if self.head == ENCODER
            else base_model_source(self.config.model),
            "labels": list(self.answer_space.labels),
            "answers": list(self.answer_space.answers),
            "answer_token_ids": self.answer_token_ids,
            "uses_chat_template": bool(self.chat),
            "system_prompt": self.chat.system if self.chat else None,
            "input_template": self.input_template,
            "temperature": self.temperature,
        }
        (directory / JUDGE_CONFIG_FILE).write_text(json.dumps(resolved, indent=2) + "\n")

    @property
    def labels(self) -> tuple[str, ...]:
        """Return the class labels, in the order of the probability columns."""
        return self.answer_space.labels

    def prompt_ids(self, prompt: str) -> list[int]:
        """Return the token ids the model reads for a rendered input."""
        return self.inputs_ids([prompt])[0]

    def inputs_ids(self, inputs: Sequence[str]) -> list[list[int]]:
        """Return the token ids the model reads for each rendered input, tokenized in one call."""
        if self.head == GENERATE:
            return prompts_token_ids(self.tokenizer, inputs, self.chat)
        if not inputs:
            return []
        return [list(ids) for ids in self.tokenizer(text=list(inputs))["input_ids"]]

    def render(self, rows: pd.DataFrame) -> tuple[list[str], int]:
        """Return what the model reads of each row (its input template filled, fields cut to fit max_seq_length) and how many rows were cut."""
        return render_prompts_within(
            self.input_template, rows.to_dict(orient="records"), self.tokenizer, self.field_budget
        )

    def logits(self, prompts: Sequence[str]) -> np.ndarray:
        """Return an (n_prompts, n_classes) array of class logits for rendered prompts."""
        if len(prompts) == 0:
            return np.zeros((0, len(self.labels)))
        if self.precision != FLOAT32 and not self._lowered:
            if self.precision == INT8:
                # The body only: the output head is a small share of the work and decides the label.
                quantize_linears(
                    self.model.encoder if self.head == ENCODER else self.model.base_model
                )
            else:
                self.model.to(torch.bfloat16)
            self._lowered = True
        ids = self.inputs_ids(prompts)
        max_length = self.config.training.max_seq_length
        if self.head == GENERATE:
            return answer_logits(
                self.model,
                ids,
                self.answer_token_ids,
                pad_token_id=self.tokenizer.pad_token_id,
                max_length=max_length,
                batch_size=SCORING_BATCH_SIZE,
                prefix_ids=self.shared_prefix_ids,
            )
        if self.head == CLASSIFY:
            return causal_classifier_logits(
                self.model,
                ids,
                self.tokenizer.pad_token_id,
                max_length,
                SCORING_BATCH_SIZE,
                self.shared_prefix_ids,
            )
        return classifier_logits(
            self.model, ids, self.tokenizer.pad_token_id, max_length, SCORING_BATCH_SIZE
        )

    def score_prompts(self, prompts: Sequence[str]) -> np.ndarray:
        """Return an (n_prompts, n_classes) array of class probabilities for rendered prompts."""
        return probabilities_at(self.logits(prompts), self.temperature)

    def predict(self, rows: pd.DataFrame | Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        """Return one row per input: the predicted label and a probability per class."""
        table = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
        check_template_columns(
            self.config.prompt_template, [str(c) for c in table.columns], "the rows to predict"
        )
        prompts, _ = self.render(table)
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


def scoring_precision(head: str, int8: bool | None) -> str:
    """How a judge with `head` scores on this CPU: int8 linear layers when `int8` is true (warned
    where they are slow), float32 when false; when None, the whole model in bfloat16 on a CPU with
    AMX, int8 layers for INT8_BY_DEFAULT heads on one with an int8 dot product, else float32."""
    if int8 is None:
        if bfloat16_products_are_fast():
            return BFLOAT16
        return INT8 if head in INT8_BY_DEFAULT and int8_products_are_fast() else FLOAT32
    if int8 and not int8_products_are_fast():
        logger.warning(
            "int8 scoring is on (training.model.int8_inference), but %s; set it to null or false",
            WITHOUT_INT8_DOT_PRODUCT,
        )
    return INT8 if int8 else FLOAT32


def _inference_dtype() -> torch.dtype:
    return (
        torch.bfloat16
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        else torch.float32
    )


def _on_inference_device(model: Any) -> Any:
    return model.to("cuda") if torch.cuda.is_available() else model


def _on_cpu(model: Any) -> bool:
    return next(model.parameters()).device.type == "cpu"


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
            raise PredictInputError(
                f"{path}: unsupported file type; use one of {', '.join(formats)}"
            )
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such input file")
    if not source.read_bytes().strip():
        raise PredictInputError(f"{source}: the input file is empty: no rows to score")
    rows = READERS[source.suffix.lower()](source)
    if rows.empty:
        raise PredictInputError(f"{source}: the input file has no rows to score")
    use_free_cores()
    judge = Judge.load(model_dir)
    _check_no_blank_texts(rows, template_placeholders(judge.config.prompt_template), source)
    predictions = judge.predict(rows)
    target.parent.mkdir(parents=True, exist_ok=True)
    WRITERS[target.suffix.lower()](pd.concat([rows, predictions], axis=1), target)
    return len(rows)


def _check_no_blank_texts(rows: pd.DataFrame, columns: list[str], source: Path) -> None:
    """Raise naming the rows whose prompt columns are empty or whitespace only (a judge cannot score them)."""
    for column in (c for c in columns if c in rows.columns):
        blank = rows[column].map(
            lambda v: v is None or (isinstance(v, float) and np.isnan(v)) or not str(v).strip()
        )
        if blank.any():
            numbers = [str(i + 1) for i in np.flatnonzero(blank.to_numpy())]
            shown = ", ".join(numbers[:10]) + (
                f" and {len(numbers) - 10} more" if len(numbers) > 10 else ""
            )
            raise PredictInputError(
                f"{source}: column {column} is empty or whitespace only in row(s) {shown}: fill or remove them"
            )
