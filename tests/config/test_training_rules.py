"""Every training rule of seed 001, and the rules that tie training to data_generation."""

from __future__ import annotations

import pytest

from judgeforge.config import validate_run_config
from judgeforge.config.training import (
    BASE_LEARNING_RATE,
    missing_template_columns,
    template_placeholders,
)
from tests.config.conftest import DELETE, assert_problem, config_error, mutated, problem_lines

T = "training"
THREE_CLASSES = [
    {"name": "low", "label": 0, "rubric": "r0"},
    {"name": "mid", "label": 1, "rubric": "r1"},
    {"name": "high", "label": 2, "rubric": "r2"},
]
MULTI_CLASS_GENERATION = {
    "data_generation.metric.type": "multi-class",
    "data_generation.metric.class_labels": THREE_CLASSES,
}
OPTIMIZER_RULE = "must be one of adamw_torch, adamw_torch_fused, adamw_8bit"

RULES = [
    # metric
    pytest.param(
        {f"{T}.metric.type": ""},
        f"{T}.metric.type",
        "must be one of boolean, multi_class",
        id="metric-type-empty",
    ),
    pytest.param(
        {f"{T}.metric": {}},
        f"{T}.metric.type",
        "must be one of boolean, multi_class",
        id="metric-type-default",
    ),
    pytest.param(
        {f"{T}.metric.type": "trinary"},
        f"{T}.metric.type",
        "must be one of 'boolean', 'multi_class' or ''",
        id="metric-type-trinary",
    ),
    pytest.param(
        {f"{T}.metric": {"type": "multi_class"}, **MULTI_CLASS_GENERATION},
        f"{T}.metric.classes",
        "multi_class needs at least two classes",
        id="classes-missing",
    ),
    pytest.param(
        {f"{T}.metric": {"type": "multi_class", "classes": ["0"]}, **MULTI_CLASS_GENERATION},
        f"{T}.metric.classes",
        "multi_class needs at least two classes",
        id="classes-one",
    ),
    pytest.param(
        {f"{T}.metric": {"type": "multi_class", "classes": None}, **MULTI_CLASS_GENERATION},
        f"{T}.metric.classes",
        "multi_class needs at least two classes",
        id="classes-null",
    ),
    pytest.param(
        {
            f"{T}.metric": {"type": "multi_class", "classes": ["0", "1", "1"]},
            **MULTI_CLASS_GENERATION,
        },
        f"{T}.metric.classes",
        "classes must be unique",
        id="classes-repeat",
    ),
    # dataset
    pytest.param(
        {f"{T}.dataset": {"split": "test"}},
        f"{T}.dataset.test_split_name",
        "must differ from dataset.split",
        id="split-equals-test",
    ),
    pytest.param(
        {f"{T}.dataset": {"split": "holdout", "test_split_name": "holdout"}},
        f"{T}.dataset.test_split_name",
        "must differ from dataset.split",
        id="split-equals-test-custom",
    ),
    pytest.param(
        {f"{T}.dataset": {"pull_from_object_store": True, "object_store_bucket": ""}},
        f"{T}.dataset.object_store_bucket",
        "required when pull_from_object_store is true",
        id="dataset-bucket-blank",
    ),
    pytest.param(
        {f"{T}.dataset": {"pull_from_object_store": True, "object_store_blob": None}},
        f"{T}.dataset.object_store_blob",
        "required when pull_from_object_store is true",
        id="dataset-blob-null",
    ),
    pytest.param(
        {f"{T}.dataset": {"local": "maybe"}},
        f"{T}.dataset.local",
        "Input should be a valid boolean",
        id="dataset-local-not-bool",
    ),
    # hyperparameters
    pytest.param(
        {f"{T}.training": {"fp16": True}},
        f"{T}.training.fp16",
        "fp16 and bf16 cannot both be true",
        id="fp16-and-bf16",
    ),
    pytest.param(
        {f"{T}.training": {"optim": "adam"}},
        f"{T}.training.optim",
        OPTIMIZER_RULE,
        id="unknown-optim",
    ),
    pytest.param(
        {f"{T}.training": {"lr_scheduler_type": "cos"}},
        f"{T}.training.lr_scheduler_type",
        "must be one of linear, cosine",
        id="unknown-scheduler",
    ),
    pytest.param(
        {f"{T}.training": {"num_train_epochs": 0}},
        f"{T}.training.num_train_epochs",
        "greater than or equal to 1",
        id="epochs-0",
    ),
    pytest.param(
        {f"{T}.training": {"per_device_train_batch_size": 0}},
        f"{T}.training.per_device_train_batch_size",
        "greater than or equal to 1",
        id="batch-0",
    ),
    pytest.param(
        {f"{T}.training": {"gradient_accumulation_steps": -1}},
        f"{T}.training.gradient_accumulation_steps",
        "greater than or equal to 1",
        id="accumulation-negative",
    ),
    pytest.param(
        {f"{T}.training": {"logging_steps": 0}},
        f"{T}.training.logging_steps",
        "greater than or equal to 1",
        id="logging-steps-0",
    ),
    pytest.param(
        {f"{T}.training": {"learning_rate_multiplier": 0}},
        f"{T}.training.learning_rate_multiplier",
        "greater than 0",
        id="lr-multiplier-0",
    ),
    pytest.param(
        {f"{T}.training": {"num_train_epochs": "five"}},
        f"{T}.training.num_train_epochs",
        "Input should be a valid integer",
        id="epochs-string",
    ),
    pytest.param(
        {f"{T}.training": {"num_train_epochs": 2.5}},
        f"{T}.training.num_train_epochs",
        "Input should be a valid integer",
        id="epochs-fraction",
    ),
    pytest.param(
        {f"{T}.training": {"use_wandb": "often"}},
        f"{T}.training.use_wandb",
        "Input should be a valid boolean",
        id="use-wandb-not-bool",
    ),
    # output
    pytest.param(
        {f"{T}.output": {"push_to_object_store": True, "object_store_bucket": None}},
        f"{T}.output.object_store_bucket",
        "required when push_to_object_store is true",
        id="output-bucket-null",
    ),
    pytest.param(
        {f"{T}.output": {"push_to_object_store": True, "object_store_blob": " "}},
        f"{T}.output.object_store_blob",
        "required when push_to_object_store is true",
        id="output-blob-blank",
    ),
    # model
    pytest.param(
        {f"{T}.model": {"pull_model_from_object_store": True, "model_object_store_bucket": ""}},
        f"{T}.model.model_object_store_bucket",
        "required when pull_model_from_object_store is true",
        id="model-bucket",
    ),
    pytest.param(
        {
            f"{T}.model": {
                "pull_model_from_object_store": True,
                "model_object_store_blob_base": None,
            }
        },
        f"{T}.model.model_object_store_blob_base",
        "required when pull_model_from_object_store is true",
        id="model-blob-base",
    ),
    pytest.param(
        {
            f"{T}.model": {
                "pull_model_from_object_store": True,
                "model_object_store_blob_adapters": "",
            }
        },
        f"{T}.model.model_object_store_blob_adapters",
        "required when pull_model_from_object_store is true",
        id="model-blob-adapters",
    ),
    pytest.param(
        {f"{T}.model": {"lora_r": 0}},
        f"{T}.model.lora_r",
        "greater than or equal to 1",
        id="lora-r-0",
    ),
    pytest.param(
        {f"{T}.model": {"peft_model_map": ["a"]}},
        f"{T}.model.peft_model_map",
        "Input should be a valid dictionary",
        id="peft-map-list",
    ),
    # prompt_template
    pytest.param(
        {f"{T}.prompt_template": DELETE},
        f"{T}.prompt_template",
        "required field is missing",
        id="template-missing",
    ),
    pytest.param(
        {f"{T}.prompt_template": ""},
        f"{T}.prompt_template",
        "at least 1 character",
        id="template-empty",
    ),
    pytest.param(
        {f"{T}.prompt_template": "Is this toxic?"},
        f"{T}.prompt_template",
        "must reference at least one dataset column with a {column} placeholder",
        id="template-no-placeholder",
    ),
    pytest.param(
        {f"{T}.prompt_template": "Literal {{braces}} only"},
        f"{T}.prompt_template",
        "must reference at least one dataset column",
        id="template-escaped-braces-only",
    ),
    pytest.param(
        {f"{T}.prompt_template": "{text} -> {label}"},
        f"{T}.prompt_template",
        "must not reference the label column {label}",
        id="template-label-column",
    ),
    pytest.param(
        {f"{T}.prompt_template": "{text} -> {gold}", f"{T}.dataset": {"test_label_column": "gold"}},
        f"{T}.prompt_template",
        "must not reference the label column {gold}",
        id="template-test-label-column",
    ),
    pytest.param(
        {f"{T}.prompt_template": "{text} {0}"},
        f"{T}.prompt_template",
        "not a valid template: placeholder {0} must be a column name",
        id="template-positional",
    ),
    pytest.param(
        {f"{T}.prompt_template": "{text} {}"},
        f"{T}.prompt_template",
        "not a valid template: placeholder {} must be a column name",
        id="template-empty-braces",
    ),
    pytest.param(
        {f"{T}.prompt_template": "{text"},
        f"{T}.prompt_template",
        "not a valid template",
        id="template-unclosed",
    ),
    pytest.param(
        {f"{T}.prompt_template": "{text} }"},
        f"{T}.prompt_template",
        "not a valid template",
        id="template-stray-close",
    ),
    # cross-section: training vs data_generation
    pytest.param(
        {f"{T}.metric": {"type": "multi_class", "classes": ["0", "1"]}},
        f"{T}.metric.type",
        "must be boolean because data_generation.metric.type is binary",
        id="type-vs-binary",
    ),
    pytest.param(
        {**MULTI_CLASS_GENERATION},
        f"{T}.metric.type",
        "must be multi_class because data_generation.metric.type is multi-class",
        id="type-vs-multi-class",
    ),
    pytest.param(
        {
            f"{T}.metric": {"type": "multi_class", "classes": ["0", "1", "3"]},
            **MULTI_CLASS_GENERATION,
        },
        f"{T}.metric.classes",
        "must list the class label values of data_generation.metric.class_labels (0, 1, 2)",
        id="classes-vs-labels",
    ),
    pytest.param(
        {
            f"{T}.metric": {"type": "multi_class", "classes": ["low", "mid", "high"]},
            **MULTI_CLASS_GENERATION,
        },
        f"{T}.metric.classes",
        "must list the class label values",
        id="classes-are-names-not-values",
    ),
    pytest.param(
        {f"{T}.prompt_template": "{text} {reply}"},
        f"{T}.prompt_template",
        "placeholders {reply} name no dataset column (columns: text)",
        id="template-unknown-column",
    ),
    pytest.param(
        {f"{T}.prompt_template": "{message}"},
        f"{T}.prompt_template",
        "placeholders {message} name no dataset column",
        id="template-only-unknown-column",
    ),
]


@pytest.mark.parametrize(("changes", "path", "rule"), RULES)
def test_each_training_rule_names_the_field_and_the_rule(raw_config, changes, path, rule):
    error = config_error(mutated(raw_config, changes))
    assert_problem(error, path, rule)
    assert any(p.path == path and rule in p.rule for p in error.problems)


def test_typo_in_training_section_is_an_unknown_field(raw_config):
    for typo_path in (
        f"{T}.trainig",
        f"{T}.training.num_epochs",
        f"{T}.model.lora_rank",
        f"{T}.dataset.nmae",
    ):
        error = config_error(mutated(raw_config, {typo_path: 1}))
        line = assert_problem(error, typo_path, "unknown field")
        assert line.startswith(f"{typo_path}: 1 — unknown field"), line


def test_multi_class_matching_classes_validates_in_any_order(raw_config):
    config = validate_run_config(
        mutated(
            raw_config,
            {
                f"{T}.metric": {"type": "multi_class", "classes": ["2", "0", "1"]},
                **MULTI_CLASS_GENERATION,
            },
        )
    )
    assert config.training.metric.classes == ["2", "0", "1"]
    assert config.training.metric.type == "multi_class"


def test_template_with_escaped_braces_and_a_column_is_valid(raw_config):
    config = validate_run_config(
        mutated(raw_config, {f"{T}.prompt_template": 'Answer as {{"label": true}}.\n{text}'})
    )
    assert template_placeholders(config.training.prompt_template) == ["text"]


def test_template_placeholders_and_missing_columns():
    assert template_placeholders("{q} and {a} and {q} {{x}}") == ["q", "a"]
    assert missing_template_columns("{q} {a} {ctx}", ["q", "a"]) == ["ctx"]
    with pytest.raises(ValueError, match=r"placeholder \{0\} must be a column name"):
        template_placeholders("{0}")


def test_bf16_off_fp16_on_is_valid_and_learning_rate_is_scaled(raw_config):
    config = validate_run_config(
        mutated(
            raw_config,
            {f"{T}.training": {"fp16": True, "bf16": False, "learning_rate_multiplier": 0.5}},
        )
    )
    assert config.training.training.fp16 is True
    assert config.training.training.learning_rate == pytest.approx(0.5 * BASE_LEARNING_RATE)


def test_object_store_fields_not_needed_when_switches_are_off(raw_config):
    config = validate_run_config(
        mutated(
            raw_config,
            {
                f"{T}.dataset": {"object_store_bucket": None, "object_store_blob": ""},
                f"{T}.output": {"object_store_bucket": "", "object_store_blob": None},
                f"{T}.model": {
                    "model_object_store_bucket": None,
                    "model_object_store_blob_base": "",
                    "model_object_store_blob_adapters": None,
                },
            },
        )
    )
    assert config.training.output.object_store_bucket == ""


def test_model_pull_reports_all_three_fields(raw_config):
    raw = mutated(
        raw_config,
        {
            f"{T}.model": {
                "pull_model_from_object_store": True,
                "model_object_store_bucket": None,
                "model_object_store_blob_base": "",
                "model_object_store_blob_adapters": None,
            }
        },
    )
    assert problem_lines(config_error(raw)) == [
        f"{T}.model.model_object_store_bucket: None — required when pull_model_from_object_store is true",
        f"{T}.model.model_object_store_blob_base: '' — required when pull_model_from_object_store is true",
        f"{T}.model.model_object_store_blob_adapters: None — required when pull_model_from_object_store is true",
    ]


def test_dataset_name_required_without_data_generation(raw_config):
    raw = mutated(raw_config, {"run_steps": ["training"], "data_generation": DELETE})
    lines = problem_lines(config_error(raw))
    assert lines == [
        "training.dataset.name: '' — required when data_generation is not part of this config (use the path run_data_generation returned)"
    ]


def test_dataset_name_given_without_data_generation_is_kept(raw_config):
    raw = mutated(
        raw_config,
        {
            "run_steps": ["training"],
            "data_generation": DELETE,
            f"{T}.dataset": {"name": "org/toxicity-data"},
        },
    )
    config = validate_run_config(raw)
    assert config.data_generation is None
    assert config.training.dataset.name == "org/toxicity-data"
    assert config.training.dataset.local is False


def test_empty_dataset_name_is_filled_from_the_generation_output(raw_config):
    raw = mutated(
        raw_config,
        {
            "data_generation.output.local_path": "/tmp/jf-out/",
            "data_generation.output.dataset.repo_name": "tox-v2",
        },
    )
    config = validate_run_config(raw)
    dataset = config.training.dataset
    assert (dataset.name, dataset.local, dataset.local_path) == ("tox-v2", True, "/tmp/jf-out/")
    assert config.data_generation.dataset_path == "/tmp/jf-out/tox-v2"


def test_explicit_dataset_name_is_not_overwritten(raw_config):
    config = validate_run_config(mutated(raw_config, {f"{T}.dataset": {"name": "org/other"}}))
    assert (config.training.dataset.name, config.training.dataset.local) == ("org/other", False)


def test_training_only_config_is_not_checked_against_absent_generation(raw_config):
    # training section present and consistent on its own: the classes rule only compares when both exist
    raw = mutated(
        raw_config,
        {
            f"{T}.metric": {"type": "multi_class", "classes": ["a", "b"]},
            f"{T}.dataset": {"name": "x"},
            "data_generation": DELETE,
            "run_steps": ["training"],
        },
    )
    assert validate_run_config(raw).training.metric.classes == ["a", "b"]


def test_cross_section_type_rule_reported_next_to_an_unrelated_problem(raw_config):
    raw = mutated(
        raw_config,
        {
            f"{T}.metric": {"type": "multi_class", "classes": ["0", "1"]},
            f"{T}.training": {"optim": "adam"},
        },
    )
    error = config_error(raw)
    assert_problem(error, f"{T}.training.optim", OPTIMIZER_RULE)
    assert_problem(
        error, f"{T}.metric.type", "must be boolean because data_generation.metric.type is binary"
    )


def test_template_column_rule_reported_next_to_an_unrelated_problem(raw_config):
    raw = mutated(
        raw_config,
        {f"{T}.prompt_template": "{reply}", "data_generation.llm": {"provider": "anthropic"}},
    )
    error = config_error(raw)
    assert_problem(error, "data_generation.llm.provider", "must be one of openai")
    assert_problem(error, f"{T}.prompt_template", "placeholders {reply} name no dataset column")


def test_bad_training_metric_type_is_reported_once(raw_config):
    lines = problem_lines(config_error(mutated(raw_config, {f"{T}.metric.type": "trinary"})))
    assert lines == [
        "training.metric.type: 'trinary' — must be one of 'boolean', 'multi_class' or ''"
    ]
