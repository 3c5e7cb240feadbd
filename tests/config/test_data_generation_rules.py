"""Every data_generation rule of seed 000: a bad value names the field path and the rule."""

from __future__ import annotations

import pytest

from judgeforge.config import validate_run_config
from tests.config.conftest import DELETE, assert_problem, config_error, mutated, problem_lines

DG = "data_generation"
METRIC = f"{DG}.metric"
DATASET = f"{DG}.source_data.dataset"
SAMPLING = f"{DG}.source_data.sampling"
GENERATION = f"{DG}.generation"
OUTPUT = f"{DG}.output"
DQM = f"{DG}.data_quality_metrics"
NEEDS_PROMPT = "required when llmaj_source_prompt is empty"
THREE_CLASSES = [
    {"name": "low", "label": 0, "rubric": "r0"},
    {"name": "mid", "label": 1, "rubric": "r1"},
    {"name": "high", "label": 2, "rubric": "r2"},
]

# (changes applied to the minimal config, path of the expected problem, fragment of its rule)
RULES = [
    # metric: what the judge prompt would otherwise supply
    pytest.param(
        {f"{METRIC}.description": None},
        f"{METRIC}.description",
        NEEDS_PROMPT,
        id="description-null",
    ),
    pytest.param(
        {f"{METRIC}.description": "   "},
        f"{METRIC}.description",
        NEEDS_PROMPT,
        id="description-blank",
    ),
    pytest.param(
        {f"{METRIC}.class_labels": DELETE},
        f"{METRIC}.class_labels",
        NEEDS_PROMPT,
        id="class-labels-missing",
    ),
    pytest.param(
        {f"{METRIC}.class_labels": []},
        f"{METRIC}.class_labels",
        NEEDS_PROMPT,
        id="class-labels-empty",
    ),
    pytest.param(
        {f"{METRIC}.class_labels[1].rubric": None},
        f"{METRIC}.class_labels[1].rubric",
        NEEDS_PROMPT,
        id="rubric-null",
    ),
    pytest.param(
        {f"{METRIC}.class_labels[0].rubric": "  "},
        f"{METRIC}.class_labels[0].rubric",
        NEEDS_PROMPT,
        id="rubric-blank",
    ),
    pytest.param(
        {f"{METRIC}.class_labels[1].label": 1},
        f"{METRIC}.class_labels[1].label",
        "label values must be unique (same as class_labels[0])",
        id="labels-repeat",
    ),
    pytest.param(
        {f"{METRIC}.class_labels[1].label": "1"},
        f"{METRIC}.class_labels[1].label",
        "label values must be unique",
        id="labels-1-vs-str-1",
    ),
    pytest.param(
        {f"{METRIC}.class_labels[1].label": " 1 "},
        f"{METRIC}.class_labels[1].label",
        "label values must be unique",
        id="labels-1-vs-padded-str",
    ),
    pytest.param(
        {f"{METRIC}.class_labels": THREE_CLASSES},
        f"{METRIC}.class_labels",
        "binary metrics need exactly two classes",
        id="binary-three-classes",
    ),
    pytest.param(
        {f"{METRIC}.class_labels": THREE_CLASSES[:1]},
        f"{METRIC}.class_labels",
        "binary metrics need exactly two classes",
        id="binary-one-class",
    ),
    pytest.param(
        {f"{METRIC}.type": "multi-class", f"{METRIC}.class_labels": THREE_CLASSES[:1]},
        f"{METRIC}.class_labels",
        "multi-class metrics need at least two classes",
        id="multiclass-one-class",
    ),
    pytest.param(
        {f"{METRIC}.type": "trinary"},
        f"{METRIC}.type",
        "must be one of 'binary' or 'multi-class'",
        id="metric-type-literal",
    ),
    pytest.param(
        {f"{METRIC}.input_format": "pair"},
        f"{METRIC}.input_format",
        "must be one of 'single', 'tuple' or 'rag'",
        id="input-format-literal",
    ),
    pytest.param(
        {f"{METRIC}.name": DELETE},
        f"{METRIC}.name",
        "required field is missing",
        id="metric-name-missing",
    ),
    pytest.param(
        {f"{METRIC}.class_labels[0].name": DELETE},
        f"{METRIC}.class_labels[0].name",
        "required field is missing",
        id="class-label-name-missing",
    ),
    # columns.features count by input_format
    pytest.param(
        {f"{DATASET}.columns.features": ["text", "reply"]},
        f"{DATASET}.columns.features",
        "input_format single takes exactly 1 feature column",
        id="single-two-features",
    ),
    pytest.param(
        {f"{METRIC}.input_format": "tuple"},
        f"{DATASET}.columns.features",
        "input_format tuple takes 2 or more feature columns",
        id="tuple-one-feature",
    ),
    pytest.param(
        {
            f"{METRIC}.input_format": "rag",
            f"{GENERATION}.context_examples": 1,
            f"{DATASET}.columns.features": ["query", "response"],
        },
        f"{DATASET}.columns.features",
        "input_format rag takes exactly 3 feature columns: query, context, response",
        id="rag-two-features",
    ),
    pytest.param(
        {
            f"{METRIC}.input_format": "rag",
            f"{GENERATION}.context_examples": 1,
            f"{DATASET}.columns.features": ["q", "c", "r", "x"],
        },
        f"{DATASET}.columns.features",
        "input_format rag takes exactly 3 feature columns",
        id="rag-four-features",
    ),
    pytest.param(
        {f"{DATASET}.columns.features": []},
        f"{DATASET}.columns.features",
        "List should have at least 1 item",
        id="features-empty",
    ),
    pytest.param(
        {
            f"{METRIC}.input_format": "tuple",
            f"{DATASET}.columns.features": ["question", "answer", "question"],
        },
        f"{DATASET}.columns.features",
        "feature columns must be distinct (question repeated)",
        id="features-duplicated",
    ),
    pytest.param(
        {f"{METRIC}.input_format": "tuple", f"{DATASET}.columns.features": ["text", "label"]},
        f"{DATASET}.columns.label",
        "the label column cannot also be a feature column",
        id="label-is-feature",
    ),
    # columns.label and label-only mode
    pytest.param(
        {f"{DATASET}.columns.label": None},
        f"{DATASET}.columns.label",
        "required unless labelling.label_only_mode is true",
        id="label-column-null",
    ),
    pytest.param(
        {f"{DATASET}.columns.label": ""},
        f"{DATASET}.columns.label",
        "required unless labelling.label_only_mode is true",
        id="label-column-empty",
    ),
    pytest.param(
        {
            f"{DG}.labelling": {"enabled": True, "label_only_mode": True},
            f"{METRIC}.llmaj_source_prompt": "You are a judge.",
        },
        f"{DATASET}.csv.train_file_path",
        "required when labelling.label_only_mode is true",
        id="label-only-needs-train-file",
    ),
    pytest.param(
        {
            f"{DG}.labelling": {"label_only_mode": True},
            f"{DATASET}.csv.train_file_path": "data/train.csv",
        },
        f"{DG}.labelling.enabled",
        "must be true when label_only_mode is true",
        id="label-only-needs-enabled",
    ),
    pytest.param(
        {f"{DG}.labelling": {"enabled": True}},
        f"{METRIC}.llmaj_source_prompt",
        "required when labelling.enabled is true",
        id="labelling-needs-prompt",
    ),
    pytest.param(
        {f"{DG}.labelling": {"enabled": True}, f"{METRIC}.llmaj_source_prompt": "  "},
        f"{METRIC}.llmaj_source_prompt",
        "required when labelling.enabled is true",
        id="labelling-blank-prompt",
    ),
    # source: Hugging Face / CSV
    pytest.param(
        {f"{DATASET}.source_type": "huggingface"},
        f"{DATASET}.huggingface.name",
        "required when source_type is huggingface",
        id="hf-name-missing",
    ),
    pytest.param(
        {f"{DATASET}.source_type": "huggingface", f"{DATASET}.huggingface": {"name": "org/seed"}},
        f"{DATASET}.huggingface.split",
        "required when source_type is huggingface",
        id="hf-split-missing",
    ),
    pytest.param(
        {
            f"{DATASET}.source_type": "huggingface",
            f"{DATASET}.huggingface": {"name": "  ", "split": "train"},
        },
        f"{DATASET}.huggingface.name",
        "required when source_type is huggingface",
        id="hf-name-blank",
    ),
    pytest.param(
        {f"{DATASET}.csv": {}},
        f"{DATASET}.csv.file_path",
        "required when source_type is csv",
        id="csv-file-path-missing",
    ),
    pytest.param(
        {f"{DATASET}.csv.file_path": ""},
        f"{DATASET}.csv.file_path",
        "required when source_type is csv",
        id="csv-file-path-empty",
    ),
    pytest.param(
        {f"{DATASET}.source_type": "s3"},
        f"{DATASET}.source_type",
        "must be one of 'huggingface' or 'csv'",
        id="source-type-literal",
    ),
    # sampling
    pytest.param(
        {f"{SAMPLING}.enhancement_fraction": 0},
        f"{SAMPLING}.enhancement_fraction",
        "greater than 0",
        id="fraction-0",
    ),
    pytest.param(
        {f"{SAMPLING}.enhancement_fraction": 1},
        f"{SAMPLING}.enhancement_fraction",
        "less than 1",
        id="fraction-1",
    ),
    pytest.param(
        {f"{SAMPLING}.enhancement_fraction": 1.5},
        f"{SAMPLING}.enhancement_fraction",
        "less than 1",
        id="fraction-1.5",
    ),
    pytest.param(
        {f"{SAMPLING}.enhancement_fraction": -0.1},
        f"{SAMPLING}.enhancement_fraction",
        "greater than 0",
        id="fraction-negative",
    ),
    pytest.param(
        {f"{SAMPLING}.pinned_enhancement_row_ids": [3, -1]},
        f"{SAMPLING}.pinned_enhancement_row_ids",
        "row ids are 0-based and cannot be negative",
        id="pinned-negative",
    ),
    pytest.param(
        {f"{SAMPLING}.max_enhancement_samples_per_class": 0},
        f"{SAMPLING}.max_enhancement_samples_per_class",
        "greater than or equal to 1",
        id="per-class-cap-0",
    ),
    # generation
    pytest.param(
        {
            f"{METRIC}.input_format": "rag",
            f"{DATASET}.columns.features": ["query", "context", "response"],
        },
        f"{GENERATION}.context_examples",
        "must be 1 when metric.input_format is rag",
        id="rag-context-examples-default-5",
    ),
    pytest.param(
        {
            f"{METRIC}.input_format": "rag",
            f"{DATASET}.columns.features": ["query", "context", "response"],
            f"{GENERATION}.context_examples": 0,
        },
        f"{GENERATION}.context_examples",
        "must be 1 when metric.input_format is rag",
        id="rag-context-examples-0",
    ),
    pytest.param(
        {f"{GENERATION}.label_distribution": {"1": 0.5, "2": 0.5}},
        f"{GENERATION}.label_distribution.2",
        "keys must be class labels (1, 0) or class names",
        id="distribution-unknown-key",
    ),
    pytest.param(
        {f"{GENERATION}.label_distribution": {"1": 0.5, "0": 0.48}},
        f"{GENERATION}.label_distribution",
        "shares must sum to 1 (±0.01); they sum to 0.98",
        id="distribution-sum-0.98",
    ),
    pytest.param(
        {f"{GENERATION}.label_distribution": {"toxic": 0.6, "clean": 0.6}},
        f"{GENERATION}.label_distribution",
        "shares must sum to 1 (±0.01); they sum to 1.2",
        id="distribution-sum-1.2",
    ),
    pytest.param(
        {f"{GENERATION}.label_distribution": {"1": 1.2, "0": -0.2}},
        f"{GENERATION}.label_distribution.0",
        "shares cannot be negative",
        id="distribution-negative",
    ),
    pytest.param(
        {f"{GENERATION}.llm_provider": "openai"},
        f"{GENERATION}.llm_model",
        "llm_provider and llm_model must be set together",
        id="override-provider-only",
    ),
    pytest.param(
        {f"{GENERATION}.llm_model": "gpt-4.1-mini"},
        f"{GENERATION}.llm_provider",
        "llm_provider and llm_model must be set together",
        id="override-model-only",
    ),
    pytest.param(
        {f"{GENERATION}.llm_provider": "anthropic", f"{GENERATION}.llm_model": "claude"},
        f"{GENERATION}.llm_provider",
        "must be one of openai, azure, vegas, gemini, local",
        id="override-unknown-provider",
    ),
    pytest.param(
        {f"{GENERATION}.total_examples": "many"},
        f"{GENERATION}.total_examples",
        "Input should be a valid integer",
        id="total-examples-string",
    ),
    pytest.param(
        {f"{GENERATION}.examples_per_call": 0},
        f"{GENERATION}.examples_per_call",
        "greater than or equal to 1",
        id="examples-per-call-0",
    ),
    pytest.param(
        {f"{GENERATION}.async_config": {"max_concurrent_requests": "five"}},
        f"{GENERATION}.async_config.max_concurrent_requests",
        "Input should be a valid integer",
        id="concurrency-string",
    ),
    # llm
    pytest.param(
        {f"{DG}.llm": {"provider": "anthropic"}},
        f"{DG}.llm.provider",
        "must be one of openai, azure, vegas, gemini, local",
        id="llm-unknown-provider",
    ),
    pytest.param(
        {f"{DG}.llm": {"provider": "vegas"}},
        f"{DG}.llm.base_url",
        "required for provider vegas",
        id="vegas-needs-base-url",
    ),
    pytest.param(
        {f"{DG}.llm": {"provider": "gemini", "base_url": "http://localhost:8000/v1"}},
        f"{DG}.llm.base_url",
        "only OpenAI-compatible providers (openai, azure, vegas) take a base_url",
        id="gemini-base-url",
    ),
    # output
    pytest.param(
        {f"{OUTPUT}.push_to_object_store": True, f"{OUTPUT}.object_store_bucket": ""},
        f"{OUTPUT}.object_store_bucket",
        "required when push_to_object_store is true",
        id="bucket-blank",
    ),
    pytest.param(
        {f"{OUTPUT}.push_to_object_store": True, f"{OUTPUT}.object_store_bucket": None},
        f"{OUTPUT}.object_store_bucket",
        "required when push_to_object_store is true",
        id="bucket-null",
    ),
    pytest.param(
        {f"{OUTPUT}.push_to_object_store": True, f"{OUTPUT}.object_store_blob": "  "},
        f"{OUTPUT}.object_store_blob",
        "required when push_to_object_store is true",
        id="blob-blank",
    ),
    pytest.param(
        {f"{OUTPUT}.push_to_object_store": True, f"{OUTPUT}.object_store_blob": None},
        f"{OUTPUT}.object_store_blob",
        "required when push_to_object_store is true",
        id="blob-null",
    ),
    pytest.param(
        {f"{OUTPUT}.hub": {"organization": ""}},
        f"{OUTPUT}.hub.organization",
        "required when push_to_hub is true",
        id="hub-organization-empty",
    ),
    pytest.param(
        {f"{OUTPUT}.dataset.splits": {"train": "data", "test": "data"}},
        f"{OUTPUT}.dataset.splits.test",
        "train and test split names must differ",
        id="split-names-equal",
    ),
    pytest.param(
        {f"{OUTPUT}.dataset.repo_name": DELETE},
        f"{OUTPUT}.dataset.repo_name",
        "required field is missing",
        id="repo-name-missing",
    ),
    pytest.param(
        {f"{OUTPUT}.push_to_hub": "sometimes"},
        f"{OUTPUT}.push_to_hub",
        "Input should be a valid boolean",
        id="push-to-hub-not-bool",
    ),
    # data_quality_metrics
    pytest.param(
        {f"{DQM}.umap": {"mode": "separate"}},
        f"{DQM}.umap.mode",
        "must be one of 'joint' or 'holdout_anchor'",
        id="umap-mode-literal",
    ),
    pytest.param(
        {f"{DQM}.drift": {"drift_threshold": 1.5}},
        f"{DQM}.drift.drift_threshold",
        "less than or equal to 1",
        id="drift-threshold-above-1",
    ),
    pytest.param(
        {f"{DQM}.drift": {"drift_threshold": -0.1}},
        f"{DQM}.drift.drift_threshold",
        "greater than or equal to 0",
        id="drift-threshold-negative",
    ),
    pytest.param(
        {f"{DQM}.drift": {"k_neighbors": 0}},
        f"{DQM}.drift.k_neighbors",
        "greater than or equal to 1",
        id="k-neighbors-0",
    ),
    pytest.param(
        {f"{DQM}.drift": {"output_filename": "drift_scores.csv"}},
        f"{DQM}.drift.output_filename",
        r"String should match pattern '\.parquet$'",
        id="drift-output-not-parquet",
    ),
    pytest.param(
        {f"{DQM}.random_seed": "forty-two"},
        f"{DQM}.random_seed",
        "Input should be a valid integer",
        id="random-seed-string",
    ),
    # unknown keys at every depth
    pytest.param({f"{DG}.outptu": {}}, f"{DG}.outptu", "unknown field", id="typo-section"),
    pytest.param(
        {f"{METRIC}.descripton": "x"}, f"{METRIC}.descripton", "unknown field", id="typo-metric"
    ),
    pytest.param(
        {f"{DATASET}.columns.lable": "label"},
        f"{DATASET}.columns.lable",
        "unknown field",
        id="typo-columns",
    ),
    pytest.param(
        {f"{SAMPLING}.seeed": 1}, f"{SAMPLING}.seeed", "unknown field", id="typo-sampling"
    ),
    pytest.param(
        {f"{GENERATION}.async_config": {"max_concurent_requests": 2}},
        f"{GENERATION}.async_config.max_concurent_requests",
        "unknown field",
        id="typo-async",
    ),
    pytest.param(
        {f"{DQM}.drift": {"k_neighbours": 3}},
        f"{DQM}.drift.k_neighbours",
        "unknown field",
        id="typo-drift",
    ),
    pytest.param(
        {f"{METRIC}.class_labels[0].rubrik": "x"},
        f"{METRIC}.class_labels[0].rubrik",
        "unknown field",
        id="typo-class-label",
    ),
    pytest.param(
        {f"{SAMPLING}.seed": "forty-two"},
        f"{SAMPLING}.seed",
        "Input should be a valid integer",
        id="seed-string",
    ),
]


@pytest.mark.parametrize(("changes", "path", "rule"), RULES)
def test_each_rule_names_the_field_and_the_rule(raw_config, changes, path, rule):
    error = config_error(mutated(raw_config, changes))
    line = assert_problem(error, path, rule)
    # the path is also on the structured problem, with the same rule
    assert any(p.path == path and rule in p.rule for p in error.problems), line


def test_minimal_config_is_valid(raw_config):
    config = validate_run_config(raw_config)
    assert config.data_generation.metric.label_keys() == ["1", "0"]
    assert config.data_generation.source_data.dataset.columns.features == ["text"]


VALID = [
    pytest.param(
        {
            f"{METRIC}.description": None,
            f"{METRIC}.class_labels": DELETE,
            f"{METRIC}.llmaj_source_prompt": "You judge toxicity.",
        },
        id="prompt-replaces-description-and-classes",
    ),
    pytest.param(
        {
            f"{METRIC}.class_labels[0].rubric": DELETE,
            f"{METRIC}.class_labels[1].rubric": "",
            f"{METRIC}.llmaj_source_prompt": "You judge toxicity.",
        },
        id="prompt-replaces-rubrics",
    ),
    pytest.param(
        {
            f"{METRIC}.type": "multi-class",
            f"{METRIC}.class_labels": THREE_CLASSES,
            "training.metric": {"type": "multi_class", "classes": ["0", "1", "2"]},
        },
        id="multi-class-three",
    ),
    pytest.param(
        {f"{METRIC}.class_labels[0].label": True, f"{METRIC}.class_labels[1].label": False},
        id="bool-labels",
    ),
    pytest.param(
        {f"{METRIC}.class_labels[0].label": "yes", f"{METRIC}.class_labels[1].label": "no"},
        id="string-labels",
    ),
    pytest.param(
        {
            f"{METRIC}.input_format": "tuple",
            f"{DATASET}.columns.features": ["question", "answer"],
            "training.prompt_template": "Q: {question} A: {answer}",
        },
        id="tuple-two",
    ),
    pytest.param(
        {
            f"{METRIC}.input_format": "tuple",
            f"{DATASET}.columns.features": ["a", "b", "c", "d"],
            "training.prompt_template": "{a} {b} {c} {d}",
        },
        id="tuple-four",
    ),
    pytest.param(
        {
            f"{METRIC}.input_format": "rag",
            f"{DATASET}.columns.features": ["query", "context", "response"],
            f"{GENERATION}.context_examples": 1,
            "training.prompt_template": "{query}\n{context}\n{response}",
        },
        id="rag-three-one-example",
    ),
    pytest.param(
        {
            f"{DG}.labelling": {"enabled": True, "label_only_mode": True},
            f"{METRIC}.llmaj_source_prompt": "You judge toxicity.",
            f"{DATASET}.columns.label": None,
            f"{DATASET}.csv.train_file_path": "data/01_raw/unlabelled.csv",
        },
        id="label-only-mode-without-label-column",
    ),
    pytest.param(
        {
            f"{DATASET}.source_type": "huggingface",
            f"{DATASET}.huggingface": {"name": "org/seed", "split": "train"},
            f"{DATASET}.csv": {},
        },
        id="hf-source-without-csv",
    ),
    pytest.param(
        {
            f"{SAMPLING}.enhancement_fraction": 0.999,
            f"{SAMPLING}.pinned_enhancement_row_ids": [0, 7],
        },
        id="fraction-just-below-1",
    ),
    pytest.param(
        {f"{GENERATION}.label_distribution": {"1": 0.5, "0": 0.495}}, id="distribution-0.995"
    ),
    pytest.param(
        {f"{GENERATION}.label_distribution": {"1": 0.5, "0": 0.505}}, id="distribution-1.005"
    ),
    pytest.param(
        {f"{GENERATION}.label_distribution": {"toxic": 0.3, "clean": 0.7}},
        id="distribution-by-name",
    ),
    pytest.param(
        {f"{GENERATION}.llm_provider": "gemini", f"{GENERATION}.llm_model": "gemini-2.0-flash"},
        id="override-pair",
    ),
    pytest.param(
        {f"{DG}.llm": {"provider": "vegas", "base_url": "https://gateway.example/v1"}},
        id="vegas-with-base-url",
    ),
    pytest.param(
        {f"{DG}.llm": {"provider": "openai", "base_url": "http://localhost:8000/v1"}},
        id="openai-compatible-server",
    ),
    pytest.param(
        {f"{DG}.llm": {"provider": "local", "embedding_model": "local"}}, id="local-provider"
    ),
    pytest.param(
        {f"{OUTPUT}.push_to_hub": False, f"{OUTPUT}.hub": {"organization": ""}},
        id="no-hub-no-organization",
    ),
    pytest.param(
        {f"{OUTPUT}.push_to_object_store": False, f"{OUTPUT}.object_store_bucket": None},
        id="no-object-store-no-bucket",
    ),
    pytest.param(
        {f"{DQM}.drift": {"drift_threshold": 0}, f"{DQM}.umap": {"mode": "joint"}},
        id="threshold-0-joint",
    ),
    pytest.param({f"{DQM}.drift": {"drift_threshold": 1, "k_neighbors": 1}}, id="threshold-1-k-1"),
]


@pytest.mark.parametrize("changes", VALID)
def test_valid_variants_pass(raw_config, changes):
    config = validate_run_config(mutated(raw_config, changes))
    assert config.data_generation is not None


def test_source_prompt_set_means_description_and_classes_not_required(raw_config):
    config = validate_run_config(
        mutated(
            raw_config,
            {
                f"{METRIC}.description": DELETE,
                f"{METRIC}.class_labels": DELETE,
                f"{METRIC}.llmaj_source_prompt": "Judge it.",
            },
        )
    )
    assert config.data_generation.metric.description is None
    assert config.data_generation.metric.class_labels is None
    assert config.data_generation.metric.has_source_prompt


def test_missing_description_classes_and_rubric_all_reported(raw_config):
    raw = mutated(
        raw_config,
        {
            f"{METRIC}.description": None,
            f"{METRIC}.class_labels[0].rubric": None,
            f"{METRIC}.class_labels[1].rubric": "",
        },
    )
    lines = problem_lines(config_error(raw))
    assert lines == [
        f"{METRIC}.description: None — {NEEDS_PROMPT}",
        f"{METRIC}.class_labels[0].rubric: None — {NEEDS_PROMPT}",
        f"{METRIC}.class_labels[1].rubric: '' — {NEEDS_PROMPT}",
    ]


def test_both_object_store_fields_reported_together(raw_config):
    raw = mutated(
        raw_config,
        {
            f"{OUTPUT}.push_to_object_store": True,
            f"{OUTPUT}.object_store_bucket": "",
            f"{OUTPUT}.object_store_blob": None,
        },
    )
    lines = problem_lines(config_error(raw))
    assert lines == [
        f"{OUTPUT}.object_store_bucket: '' — required when push_to_object_store is true",
        f"{OUTPUT}.object_store_blob: None — required when push_to_object_store is true",
    ]


def test_hf_source_reports_name_and_split_together(raw_config):
    lines = problem_lines(
        config_error(mutated(raw_config, {f"{DATASET}.source_type": "huggingface"}))
    )
    assert lines == [
        f"{DATASET}.huggingface.name: None — required when source_type is huggingface",
        f"{DATASET}.huggingface.split: None — required when source_type is huggingface",
    ]


@pytest.mark.parametrize(
    "shares", [{"1": 0.5, "0": 0.49}, {"1": 0.51, "0": 0.5}], ids=["sum-0.99", "sum-1.01"]
)
def test_distribution_exactly_at_the_tolerance_is_accepted(raw_config, shares):
    validate_run_config(mutated(raw_config, {f"{GENERATION}.label_distribution": shares}))


def test_typo_inside_a_class_label_is_the_only_problem(raw_config):
    error = config_error(mutated(raw_config, {f"{METRIC}.class_labels[0].rubrik": "x"}))
    assert problem_lines(error) == [
        f"{METRIC}.class_labels[0].rubrik: 'x' — unknown field (check the spelling against the config reference)"
    ]


def test_wrongly_typed_description_is_reported_once(raw_config):
    error = config_error(mutated(raw_config, {f"{METRIC}.description": 5}))
    assert problem_lines(error) == [f"{METRIC}.description: 5 — Input should be a valid string"]


def test_problem_value_shows_the_bad_value(raw_config):
    line = assert_problem(
        config_error(mutated(raw_config, {f"{SAMPLING}.enhancement_fraction": 1.5})),
        f"{SAMPLING}.enhancement_fraction",
        "less than 1",
    )
    assert line.startswith(f"{SAMPLING}.enhancement_fraction: 1.5 — ")


def test_distribution_with_integer_keys_from_yaml_is_accepted(raw_config):
    config = validate_run_config(
        mutated(raw_config, {f"{GENERATION}.label_distribution": {1: 0.6, 0: 0.4}})
    )
    assert sorted(config.data_generation.generation.label_distribution.values()) == [0.4, 0.6]
