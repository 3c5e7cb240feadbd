"""The `data_generation` section of a run config (seed 000), as pydantic v2 models."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Literal, NamedTuple

from pydantic import Field, ValidationError, ValidationInfo, field_validator

from judgeforge.config.base import (
    LUNA_BUCKET_DEFAULT,
    OBJECT_STORE_FIELDS,
    Broken,
    StrictModel,
    broken,
    judgeforge_field,
    model_rules,
    raise_broken,
    required_when,
)
from judgeforge.config.diversity import DiversityConfig
from judgeforge.config.labels import label_key
from judgeforge.llm.providers import (
    DEFAULT_PROVIDER,
    OPENAI_PROTOCOL_PROVIDERS,
    PROVIDER_NAMES,
    PROVIDERS,
)

LABEL_DISTRIBUTION_TOLERANCE = 0.01
# With labelling on, synthesis writes next to the final dataset folder, under this suffix.
GENERATED_SUFFIX = "-generated"
# Roles of the three rag feature columns, in the order `columns.features` must list them.
RAG_ROLES = ("query", "context", "response")
NEEDS_PROMPT = "required when llmaj_source_prompt is empty"


class ChosenModel(NamedTuple):
    """A provider and the model of it that a run uses for one role (generator, judge)."""

    provider: str
    model: str


def known_provider(name: str | None) -> str | None:
    """Return a provider name that the provider table knows (None passes), else raise a rule error."""
    if name is not None and name not in PROVIDERS:
        raise broken(f"must be one of {', '.join(PROVIDER_NAMES)}")
    return name


def set_together(model: StrictModel, first: str, second: str) -> list[Broken]:
    """Return a problem on the unset one of two override fields that only make sense as a pair."""
    values = {name: getattr(model, name) for name in (first, second)}
    if (values[first] is None) == (values[second] is None):
        return []
    unset = first if values[first] is None else second
    return [Broken((unset,), None, f"{first} and {second} must be set together")]


class ClassLabel(StrictModel):
    name: str = Field(min_length=1, description="Human-readable label name (e.g. positive).")
    label: bool | int | str = Field(
        description="The label value used in your dataset. Must be unique."
    )
    rubric: str | None = Field(None, description=f"What the class means; {NEEDS_PROMPT}.")

    @field_validator("label", mode="wrap")
    @classmethod
    def _one_problem_for_a_bad_label(cls, value: Any, handler: Any) -> Any:
        # a value that fits none of bool, int, str is one problem, not one per type tried
        try:
            return handler(value)
        except ValidationError:
            raise broken("must be a boolean, an integer or a string") from None


class MetricConfig(StrictModel):
    name: str = Field(min_length=1, description="Metric name used in prompts and artifacts.")
    description: str | None = Field(None, description=f"What the metric judges; {NEEDS_PROMPT}.")
    type: Literal["binary", "multi-class"] = Field(description="binary or multi-class.")
    input_format: Literal["single", "tuple", "rag"] = Field(
        description="single, tuple or rag: how many feature columns an example has."
    )
    class_labels: list[ClassLabel] | None = Field(
        None, description=f"The classes, with their label values and rubrics; {NEEDS_PROMPT}."
    )
    llmaj_source_prompt: str | None = Field(
        None,
        description="An LLM-as-a-judge prompt; when set, description and class labels may be "
        "derived from it. Required for labelling.",
    )

    @property
    def has_source_prompt(self) -> bool:
        """Return whether a judge prompt is set (non-blank)."""
        return bool(self.llmaj_source_prompt and self.llmaj_source_prompt.strip())

    def label_keys(self) -> list[str]:
        """Return the canonical keys of the class label values, in config order."""
        return [label_key(c.label) for c in self.class_labels or []]

    @model_rules
    def _rules(self) -> list[Broken]:
        """Return every broken metric rule."""
        problems = []
        if not self.has_source_prompt:
            if not (self.description and self.description.strip()):
                problems.append(Broken(("description",), self.description, NEEDS_PROMPT))
            if not self.class_labels:
                problems.append(Broken(("class_labels",), self.class_labels, NEEDS_PROMPT))
            for index, class_label in enumerate(self.class_labels or []):
                if not (class_label.rubric and class_label.rubric.strip()):
                    loc = ("class_labels", index, "rubric")
                    problems.append(Broken(loc, class_label.rubric, NEEDS_PROMPT))
        labels = self.class_labels or []
        seen: dict[str, int] = {}
        for index, class_label in enumerate(labels):
            key = label_key(class_label.label)
            if key in seen:
                problems.append(
                    Broken(
                        ("class_labels", index, "label"),
                        class_label.label,
                        f"label values must be unique (same as class_labels[{seen[key]}])",
                    )
                )
            seen.setdefault(key, index)
        names = [c.name for c in labels]
        if labels and self.type == "binary" and len(labels) != 2:
            problems.append(
                Broken(("class_labels",), names, "binary metrics need exactly two classes")
            )
        if labels and self.type == "multi-class" and len(labels) < 2:
            problems.append(
                Broken(("class_labels",), names, "multi-class metrics need at least two classes")
            )
        return problems


class DatasetColumns(StrictModel):
    features: list[str] = Field(
        min_length=1, description="Feature column names. Rules depend on metric.input_format."
    )
    label: str | None = Field(
        "label", description="The label column; required unless labelling.label_only_mode is true."
    )

    @property
    def label_column(self) -> str:
        """Return the label column, "label" when none is configured (label-only input)."""
        return self.label or "label"

    @field_validator("features")
    @classmethod
    def _distinct(cls, features: list[str]) -> list[str]:
        repeated = sorted({f for f in features if features.count(f) > 1})
        if repeated:
            raise broken(f"feature columns must be distinct ({', '.join(repeated)} repeated)")
        return features

    @model_rules
    def _rules(self) -> list[Broken]:
        """Return the label column rule."""
        if self.label and self.label in self.features:
            rule = "the label column cannot also be a feature column"
            return [Broken(("label",), self.label, rule)]
        return []


class HuggingFaceSource(StrictModel):
    name: str | None = Field(None, description="Dataset name like org/repo (if huggingface).")
    split: str | None = Field(None, description="Split name, e.g. train (if huggingface).")
    revision: str = Field("", description="Optional Git revision/branch.")


class CsvSource(StrictModel):
    file_path: str | None = Field(None, description="Path to a CSV file on disk (if csv).")
    train_file_path: str = Field("", description="The file to label in label-only workflows.")


class SourceDataset(StrictModel):
    source_type: Literal["huggingface", "csv"] = Field(description="huggingface or csv.")
    columns: DatasetColumns
    huggingface: HuggingFaceSource = Field(default_factory=HuggingFaceSource)
    csv: CsvSource = Field(default_factory=CsvSource)

    @model_rules
    def _rules(self) -> list[Broken]:
        """Return the fields the chosen source type needs."""
        if self.source_type == "huggingface":
            needed = {("huggingface", f): getattr(self.huggingface, f) for f in ("name", "split")}
        else:
            needed = {("csv", "file_path"): self.csv.file_path}
        rule = f"required when source_type is {self.source_type}"
        return [Broken(loc, v, rule) for loc, v in needed.items() if not (v and v.strip())]


class SamplingConfig(StrictModel):
    enhancement_fraction: float = Field(
        default=0.2, gt=0, lt=1, description="Share of the seed rows used as prompt examples."
    )
    max_enhancement_samples_per_class: int = Field(
        default=50000, ge=1, description="Upper bound for seed examples per class."
    )
    include_enhancement_in_train: bool = Field(
        True, description="If true, seed examples are included in the final train split."
    )
    seed: int = Field(42, description="Controls sampling reproducibility.")
    pinned_enhancement_row_ids: list[int] = Field(
        default_factory=list, description="Force-include specific rows (0-based) in the seed set."
    )

    @field_validator("pinned_enhancement_row_ids")
    @classmethod
    def _not_negative(cls, row_ids: list[int]) -> list[int]:
        if any(row_id < 0 for row_id in row_ids):
            raise broken("row ids are 0-based and cannot be negative")
        return row_ids


class SourceDataConfig(StrictModel):
    dataset: SourceDataset
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    max_text_chars: int = judgeforge_field(
        100_000,
        ge=1,
        description="A seed row whose feature column holds more characters is rejected "
        "(text_too_long).",
    )


class LLMConfig(StrictModel):
    provider: str = Field(DEFAULT_PROVIDER, description=f"One of {', '.join(PROVIDER_NAMES)}.")
    model: str = Field(
        default=PROVIDERS[DEFAULT_PROVIDER].chat_model,
        min_length=1,
        description="Provider model identifier.",
    )
    embedding_model: str = Field(
        default=PROVIDERS[DEFAULT_PROVIDER].embedding_model,
        min_length=1,
        description="Used for the quality metrics; all-MiniLM-L6-v2 or local: the embedded MiniLM.",
    )
    base_url: str | None = judgeforge_field(
        None,
        description="Where an OpenAI-compatible server lives "
        f"({', '.join(OPENAI_PROTOCOL_PROVIDERS)}; required for vegas).",
    )
    api_version: str | None = judgeforge_field(None, description="Azure's API version.")
    temperature: float = judgeforge_field(0.9, ge=0, le=2, description="Sampling temperature.")
    max_output_tokens: int = judgeforge_field(
        1024, ge=1, description="Most tokens one answer may use."
    )
    local_workers: int | None = judgeforge_field(
        None,
        ge=1,
        description="Processes the local provider decodes a long job in, each with its share of "
        "the CPU threads and its own copy of the model; null: one per torch thread, at most 4.",
    )

    _known_provider = field_validator("provider")(known_provider)

    @field_validator("base_url")
    @classmethod
    def _fits_the_provider(cls, base_url: str | None, info: ValidationInfo) -> str | None:
        provider = PROVIDERS.get(info.data.get("provider"))
        if provider is None:  # unknown or broken provider: reported on its own field
            return base_url
        if provider.needs_base_url and not base_url:
            raise broken(
                f"required for provider {provider.name} (an OpenAI-compatible gateway: give its URL)"
            )
        if base_url and not provider.openai_protocol:
            compatible = ", ".join(OPENAI_PROTOCOL_PROVIDERS)
            raise broken(f"only OpenAI-compatible providers ({compatible}) take a base_url")
        return base_url


class AsyncConfig(StrictModel):
    max_concurrent_requests: int = Field(default=5, ge=1, description="Concurrency.")
    request_timeout_seconds: float = judgeforge_field(
        120.0, gt=0, description="Seconds one request may take before it is retried."
    )
    max_retries: int = judgeforge_field(6, ge=0, description="Retries of a failed request.")
    adaptive_concurrency: bool = judgeforge_field(
        True,
        description="Under sustained throttling (most answers 429), learn the rate the provider "
        "admits and pace request starts to it; scattered 429s only make the throttled request "
        "wait (see BENCHMARKS.md).",
    )
    retry_budget_seconds: float = judgeforge_field(
        300.0,
        gt=0,
        description="Throttled requests are retried until this many seconds after their first "
        "try; max_retries bounds the other transient failures (5xx, timeouts, dropped "
        "connections, garbled bodies).",
    )
    max_connection_failures: int = judgeforge_field(
        10,
        ge=1,
        description="Connection attempts that fail in a row (nothing listens, no such host) "
        "before the run stops.",
    )
    requests_per_minute: float | None = judgeforge_field(
        None, gt=0, description="The provider's request quota, when known: starts are paced to it."
    )
    tokens_per_minute: float | None = judgeforge_field(
        None, gt=0, description="The provider's token quota, when known: starts are paced to it."
    )
    batch: bool = judgeforge_field(
        False,
        description="Send the generation and labelling calls through the provider's batch API "
        "(OpenAI, Gemini: half price, answers within 24 h); the batch id is kept with the response "
        "cache, so a killed run resumes it instead of paying twice. Embeddings stay online.",
    )


class Postprocessing(StrictModel):
    """Oumi's postprocessing_params for one generated field, applied in this order before validation."""

    cut_prefix: str | None = judgeforge_field(
        None, description="Remove this text and everything before it (when present)."
    )
    cut_suffix: str | None = judgeforge_field(
        None, description="Remove this text and everything after it (when present)."
    )
    regex: str | None = judgeforge_field(
        None,
        description="Keep the first match (its first group when the pattern has groups); "
        "a text without a match is kept as it is.",
    )
    strip_whitespace: bool = judgeforge_field(
        True, description="Remove leading and trailing whitespace."
    )
    added_prefix: str = judgeforge_field("", description="Text put before the value.")
    added_suffix: str = judgeforge_field("", description="Text put after the value.")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as error:
                raise broken(f"is not a valid regular expression: {error}") from None
        return pattern


class GenerationConfig(StrictModel):
    context_examples: int = Field(
        default=5, ge=0, description="Seed examples placed in the prompt per call (1 for rag)."
    )
    context_token_budget: int | None = judgeforge_field(
        None,
        ge=1,
        description="Most tokens (the generator's tokenizer) the seed examples shown in one call "
        "take together: the examples past the budget are left out, the first always shown, so "
        "long rows get fewer examples and short rows all context_examples. null: 1024 in the "
        "few-shot conversation of a model without JSON output (the embedded one), else no limit.",
    )
    examples_per_call: int = Field(default=10, ge=1, description="Examples requested per call.")
    total_examples: int = Field(
        default=2000, ge=1, description="Total synthetic examples across all classes."
    )
    label_distribution: dict[str, float] = Field(
        default_factory=dict,
        description="Share of each class (label value or name); empty: inferred from the "
        f"holdout split; otherwise the shares sum to 1 (±{LABEL_DISTRIBUTION_TOLERANCE}).",
    )
    async_config: AsyncConfig = Field(default_factory=AsyncConfig)
    debug_save_prompts: bool = Field(False, description="Save prompts/responses for debugging.")
    special_instructions: str | None = Field(None, description="Extra guidance for prompts.")
    llm_provider: str | None = Field(
        None, description="Optional override; must be set together with llm_model."
    )
    llm_model: str | None = Field(
        None, description="Optional override; must be set together with llm_provider."
    )
    max_attempts_per_example: float = judgeforge_field(
        3.0, ge=1, description="Calls allowed per requested example before a quota is given up."
    )
    max_shortfall_fraction: float = judgeforge_field(
        0.1,
        ge=0,
        le=1,
        description="Share of total_examples a run may fall short by and still succeed.",
    )
    shards: int = judgeforge_field(
        1,
        ge=1,
        description="Parts the generation plan is split into, each generated by its own node "
        "(parallel runners run them on different workers); a merge node removes what two "
        "shards both made. 1: one generation node.",
    )
    postprocessing: dict[str, Postprocessing] = judgeforge_field(
        default_factory=dict,
        description="Feature column → cleaning of its generated text (Oumi's "
        "postprocessing_params), applied before validation.",
    )

    _known_provider = field_validator("llm_provider")(known_provider)

    @field_validator("label_distribution", mode="before")
    @classmethod
    def _label_keys_as_text(cls, value: object) -> object:
        # YAML reads `{1: 0.6, 0: 0.4}` with integer keys; labels are compared as text
        if isinstance(value, dict):
            return {k if isinstance(k, str) else label_key(k): v for k, v in value.items()}
        return value

    @field_validator("label_distribution")
    @classmethod
    def _shares(cls, shares: dict[str, float]) -> dict[str, float]:
        problems = [
            Broken((key,), share, "shares cannot be negative")
            for key, share in shares.items()
            if share < 0
        ]
        total = sum(shares.values())
        # the epsilon keeps sums exactly at the tolerance (0.5 + 0.49) from failing on float rounding
        if shares and abs(total - 1.0) > LABEL_DISTRIBUTION_TOLERANCE + 1e-9:
            rule = f"shares must sum to 1 (±{LABEL_DISTRIBUTION_TOLERANCE}); they sum to {total:g}"
            problems.append(Broken((), shares, rule))
        raise_broken("label_distribution", problems)
        return shares

    @model_rules
    def _rules(self) -> list[Broken]:
        """Return the override pair rule."""
        return set_together(self, "llm_provider", "llm_model")


class OutputDatasetSplits(StrictModel):
    train: str = Field(default="train", min_length=1, description="Split name of training data.")
    test: str = Field(default="test", min_length=1, description="Split name of holdout data.")

    @model_rules
    def _rules(self) -> list[Broken]:
        """Return the distinct split names rule."""
        if self.train == self.test:
            return [Broken(("test",), self.test, "train and test split names must differ")]
        return []


class OutputDataset(StrictModel):
    repo_name: str = Field(min_length=1, description="Local folder name and/or hub repo name.")
    private: bool = Field(True, description="Hub visibility.")
    splits: OutputDatasetSplits = Field(default_factory=OutputDatasetSplits)


class HubConfig(StrictModel):
    organization: str = Field("rungalileo", description="Required if push_to_hub is true.")


SFTFormat = Literal["messages", "instruction", "openai", "alpaca"]


class OutputConfig(StrictModel):
    push_to_hub: bool = Field(True, description="Push to Hugging Face Hub.")
    push_to_object_store: bool = Field(
        False, description="Upload a compressed dataset artifact to the object store."
    )
    local_path: str = Field(
        default="./data/generated_data", min_length=1, description="Local artifact directory."
    )
    object_store_bucket: str | None = Field(
        LUNA_BUCKET_DEFAULT, description="Required when push_to_object_store is true."
    )
    object_store_blob: str | None = Field(
        "generated_data", description="Required when push_to_object_store is true."
    )
    dataset: OutputDataset
    hub: HubConfig = Field(default_factory=HubConfig)
    sft_formats: list[SFTFormat] = judgeforge_field(
        default_factory=list,
        description="Besides the DatasetDict, write each split as JSON lines in these formats "
        "(DeepFabric): messages, instruction, openai, alpaca, built from training.prompt_template "
        "and the label, next to the dataset folder (<folder>-sft/<format>/<split>.jsonl).",
    )
    sys_msg: bool = judgeforge_field(
        True,
        description="Put a system message (the metric's description and the answers allowed) "
        "in the sft_formats records (DeepFabric's sys_msg).",
    )

    @field_validator("sft_formats")
    @classmethod
    def _once_each(cls, formats: list[SFTFormat]) -> list[SFTFormat]:
        repeated = sorted({f for f in formats if formats.count(f) > 1})
        if repeated:
            raise broken(f"formats must not repeat ({', '.join(repeated)} repeated)")
        return formats

    @model_rules
    def _rules(self) -> list[Broken]:
        """Return every broken output rule."""
        problems = required_when(self, "push_to_object_store", OBJECT_STORE_FIELDS)
        if self.push_to_hub and not self.hub.organization.strip():
            problems.append(
                Broken(
                    ("hub", "organization"),
                    self.hub.organization,
                    "required when push_to_hub is true",
                )
            )
        return problems


class DisagreementPolicy(StrEnum):
    """What happens to a synthetic row whose judge label differs from the label it was made for."""

    KEEP = "keep"
    RELABEL = "relabel"
    DROP = "drop"


class LabellingConfig(StrictModel):
    enabled: bool = Field(
        False, description="Enables labelling (needs metric.llmaj_source_prompt)."
    )
    label_only_mode: bool = Field(
        False, description="Label an existing train file without generating new examples."
    )
    judge_provider: str | None = judgeforge_field(
        None, description="The judge's provider (default: llm.provider); set with judge_model."
    )
    judge_model: str | None = judgeforge_field(
        None, description="The judge model (default: llm.model); set with judge_provider."
    )
    disagreement_policy: DisagreementPolicy = judgeforge_field(
        DisagreementPolicy.KEEP,
        description="What to do with synthetic rows the judge labels differently.",
    )
    invalid_answer_retries: int = judgeforge_field(
        2, ge=0, description="How often an invalid judge answer is asked again."
    )
    max_unlabelled_fraction: float = judgeforge_field(
        0.1,
        ge=0,
        le=1,
        description="Share of rows the judge may leave unlabelled because its requests failed.",
    )

    _known_provider = field_validator("judge_provider")(known_provider)

    @model_rules
    def _rules(self) -> list[Broken]:
        """Return every broken labelling rule."""
        problems = set_together(self, "judge_provider", "judge_model")
        if self.label_only_mode and not self.enabled:
            rule = "must be true when label_only_mode is true"
            problems.append(Broken(("enabled",), self.enabled, rule))
        return problems


class UmapConfig(StrictModel):
    enabled: bool = Field(False, description="Enable UMAP projections.")
    mode: Literal["joint", "holdout_anchor"] = Field(
        "holdout_anchor", description="joint or holdout_anchor."
    )
    umap_neighbors: int = Field(default=15, ge=2, description="Neighbour count for UMAP.")
    umap_min_dist: float = Field(default=0.1, ge=0, le=1, description="Minimum distance for UMAP.")


class DriftConfig(StrictModel):
    enabled: bool = Field(True, description="Enable drift scoring.")
    k_neighbors: int = Field(default=30, ge=1, description="k-NN size.")
    drift_threshold: float = Field(
        default=0.95, ge=0, le=1, description="Percentile threshold in [0, 1]."
    )
    index_dir: str = Field(
        default="/tmp/faiss", min_length=1, description="Directory for the FAISS index."
    )
    output_filename: str = Field(
        default="drift_scores.parquet",
        pattern=r"\.parquet$",
        description="Output file for drift scores.",
    )
    sort_by_score_desc: bool = Field(True, description="Sort drift results descending.")


class DataQualityMetricsConfig(StrictModel):
    enabled: bool = Field(True, description="Master switch.")
    random_seed: int = Field(42, description="Reproducibility.")
    artifact_subdir: str = Field(
        default="artifacts", min_length=1, description="Folder under output.local_path."
    )
    umap: UmapConfig = Field(default_factory=UmapConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)


class DataGenerationConfig(StrictModel):
    metric: MetricConfig
    source_data: SourceDataConfig
    llm: LLMConfig = Field(default_factory=LLMConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    diversity: DiversityConfig = judgeforge_field(
        default_factory=DiversityConfig,
        description="What varies between generation calls: attributes, personas, languages, "
        "prompt template.",
    )
    output: OutputConfig
    labelling: LabellingConfig = Field(default_factory=LabellingConfig)
    data_quality_metrics: DataQualityMetricsConfig = Field(default_factory=DataQualityMetricsConfig)

    @property
    def generator(self) -> ChosenModel:
        """Return the generation model: generation.llm_provider/llm_model, else the primary llm."""
        return self._override_or_primary(self.generation.llm_provider, self.generation.llm_model)

    @property
    def judge(self) -> ChosenModel:
        """Return the judge: labelling.judge_provider/judge_model, else the primary llm."""
        return self._override_or_primary(self.labelling.judge_provider, self.labelling.judge_model)

    def _override_or_primary(self, provider: str | None, model: str | None) -> ChosenModel:
        """Return an override's provider and model (set together), else the primary llm's."""
        return ChosenModel(provider or self.llm.provider, model or self.llm.model)

    @property
    def dataset_path(self) -> str:
        """Return where the final DatasetDict (after labelling, when enabled) is written."""
        return f"{self.output.local_path.rstrip('/')}/{self.output.dataset.repo_name}"

    @property
    def generated_dataset_path(self) -> str:
        """Return where synthesis writes its DatasetDict: the final folder unless a judge labels it next."""
        return (
            f"{self.dataset_path}{GENERATED_SUFFIX}"
            if self.labelling.enabled
            else self.dataset_path
        )
