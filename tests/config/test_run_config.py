"""The run config as a whole: top-level keys, run_steps, every problem listed at once, the YAML file door."""

from __future__ import annotations

import re

import pytest
import yaml

from judgeforge.config import ConfigError, RunConfig, load_run_config, validate_run_config
from tests.config.conftest import DELETE, assert_problem, config_error, mutated, problem_lines

LINE = re.compile(r"^(?P<path>\S+): (?P<value>.+) — (?P<rule>.+)$")

TOP_LEVEL_RULES = [
    pytest.param(
        {"run_steps": []},
        "run_steps",
        "must name at least one of data_generation, training",
        id="run-steps-empty",
    ),
    pytest.param(
        {"run_steps": ["evaluation"]},
        "run_steps[0]",
        "must be one of 'data_generation' or 'training'",
        id="run-steps-unknown",
    ),
    pytest.param(
        {"run_steps": ["training", "training"]},
        "run_steps",
        "steps must not repeat",
        id="run-steps-repeated",
    ),
    pytest.param(
        {"run_steps": "training"},
        "run_steps",
        "Input should be a valid list",
        id="run-steps-not-a-list",
    ),
    pytest.param(
        {"pipeline_provider": "sagemaker"},
        "pipeline_provider",
        "must be one of local (the Kedro runner on this machine)",
        id="provider-not-local",
    ),
    pytest.param({"metric_name": " "}, "metric_name", "must not be empty", id="metric-name-blank"),
    pytest.param(
        {"metric_name": 7}, "metric_name", "Input should be a valid string", id="metric-name-int"
    ),
    pytest.param(
        {"run_stepz": ["training"]}, "run_stepz", "unknown top-level key", id="top-level-typo"
    ),
    pytest.param(
        {"data_generation": DELETE},
        "data_generation",
        "required by run_steps",
        id="generation-section-missing",
    ),
    pytest.param(
        {"training": DELETE}, "training", "required by run_steps", id="training-section-missing"
    ),
    pytest.param(
        {"training": None}, "training", "required by run_steps", id="training-section-null"
    ),
    pytest.param(
        {"data_generation": DELETE, "run_steps": ["data_generation"]},
        "data_generation",
        "required by run_steps",
        id="only-step-section-missing",
    ),
    pytest.param(
        {"training": ["not", "a", "mapping"]},
        "training",
        "must be a mapping",
        id="training-not-mapping",
    ),
    pytest.param(
        {"data_generation.metric": "binary"},
        "data_generation.metric",
        "Input should be a valid dictionary",
        id="metric-not-mapping",
    ),
]


@pytest.mark.parametrize(("changes", "path", "rule"), TOP_LEVEL_RULES)
def test_top_level_rules(raw_config, changes, path, rule):
    assert_problem(config_error(mutated(raw_config, changes)), path, rule)


def test_top_level_defaults(raw_config):
    config = validate_run_config(
        mutated(
            raw_config, {"run_steps": DELETE, "pipeline_provider": DELETE, "metric_name": DELETE}
        )
    )
    assert config.run_steps == ["data_generation", "training"]
    assert config.pipeline_provider == "local"
    assert config.metric_name == "custom"


def test_section_not_in_run_steps_may_be_absent(raw_config):
    config = validate_run_config(
        mutated(raw_config, {"run_steps": ["data_generation"], "training": DELETE})
    )
    assert config.training is None
    assert config.data_generation.output.dataset.repo_name == "toxicity-data"


def test_not_a_mapping_is_one_problem():
    error = config_error(["run_steps"])
    assert problem_lines(error) == ["(top level): ['run_steps'] — a run config must be a mapping"]


def test_message_heading_counts_problems(raw_config):
    error = config_error(mutated(raw_config, {"pipeline_provider": "aws"}))
    assert str(error).splitlines()[0] == "invalid config (1 problem):"
    error = config_error(mutated(raw_config, {"pipeline_provider": "aws", "metric_name": ""}))
    assert str(error).splitlines()[0] == "invalid config (2 problems):"
    assert len(error.problems) == 2


# Ten independent problems, one or more in every part of the config; each maps to the line it must produce.
EVERY_PROBLEM = {
    "pipeline_provider": ("sagemaker", "pipeline_provider", "must be one of local"),
    "data_generation.metric.class_labels[1].rubric": (
        "",
        "data_generation.metric.class_labels[1].rubric",
        "required when llmaj_source_prompt is empty",
    ),
    "data_generation.source_data.sampling.enhancement_fraction": (
        1.5,
        "data_generation.source_data.sampling.enhancement_fraction",
        "less than 1",
    ),
    "data_generation.llm.provider": (
        "anthropic",
        "data_generation.llm.provider",
        "must be one of openai, azure, vegas, gemini, local",
    ),
    "data_generation.generation.llm_model": (
        "gpt-4.1-mini",
        "data_generation.generation.llm_provider",
        "must be set together",
    ),
    "data_generation.output.hub": (
        {"organization": ""},
        "data_generation.output.hub.organization",
        "required when push_to_hub is true",
    ),
    "data_generation.data_quality_metrics.drift": (
        {"output_filename": "scores.csv"},
        "data_generation.data_quality_metrics.drift.output_filename",
        ".parquet",
    ),
    "data_generation.lables": ({}, "data_generation.lables", "unknown field"),
    "training.training": (
        {"fp16": True, "num_train_epochs": 0},
        "training.training.fp16",
        "fp16 and bf16 cannot both be true",
    ),
    "training.model": (
        {"pull_model_from_object_store": True, "model_object_store_blob_base": ""},
        "training.model.model_object_store_blob_base",
        "required when pull_model_from_object_store is true",
    ),
    "training.dataset": (
        {"split": "test"},
        "training.dataset.test_split_name",
        "must differ from dataset.split",
    ),
}


def test_every_problem_is_reported_at_once(raw_config):
    raw = mutated(raw_config, {path: value for path, (value, _, _) in EVERY_PROBLEM.items()})
    # a cross-section rule inside data_generation whose inputs are valid, next to unrelated bad fields there
    raw = mutated(raw, {"data_generation.metric.input_format": "tuple"})
    error = config_error(raw)
    lines = problem_lines(error)
    for _, path, rule in EVERY_PROBLEM.values():
        assert_problem(error, path, rule)
    assert_problem(
        error,
        "data_generation.source_data.dataset.columns.features",
        "input_format tuple takes 2 or more feature columns",
    )
    assert_problem(error, "training.training.num_train_epochs", "greater than or equal to 1")
    # 11 mutations, one of which breaks two rules, plus the cross-section rule: 13 lines, no more
    assert len(lines) == len(error.problems) == 13, "\n".join(lines)
    assert str(error).splitlines()[0] == "invalid config (13 problems):"


def test_every_line_has_the_form_path_value_rule(raw_config):
    raw = mutated(raw_config, {path: value for path, (value, _, _) in EVERY_PROBLEM.items()})
    error = config_error(raw)
    for line, problem in zip(problem_lines(error), error.problems, strict=True):
        match = LINE.match(line)
        assert match, line
        assert match["path"] == problem.path
        assert match["rule"] == problem.rule
        assert match["value"] == (
            repr(problem.value)
            if len(repr(problem.value)) <= 80
            else repr(problem.value)[:77] + "..."
        )


def test_long_values_are_shortened_in_the_message(raw_config):
    long_text = "x" * 300
    line = assert_problem(
        config_error(mutated(raw_config, {"pipeline_provider": long_text})),
        "pipeline_provider",
        "must be one of local",
    )
    value = LINE.match(line)["value"]
    assert len(value) == 80 and value.endswith("...")


def test_bad_top_level_type_does_not_hide_other_top_level_problems(raw_config):
    error = config_error(
        mutated(raw_config, {"metric_name": 5, "pipeline_provider": "aws", "training": DELETE})
    )
    assert_problem(error, "metric_name", "Input should be a valid string")
    assert_problem(error, "pipeline_provider", "must be one of local")
    assert_problem(error, "training", "required by run_steps")


def test_valid_config_returns_models(raw_config):
    config = validate_run_config(raw_config)
    assert isinstance(config, RunConfig)
    assert config.data_generation.metric.name == "toxicity"
    assert config.training.metric.type == "boolean"


# ---- the YAML file door ----


def test_load_run_config_reads_a_yaml_file(tmp_path, raw_config):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw_config), encoding="utf-8")
    config = load_run_config(path)
    assert config.data_generation.metric.label_keys() == ["1", "0"]
    assert config.training.dataset.name == "toxicity-data"


def test_files_a_run_yaml_names_are_read_from_its_folder_not_the_current_one(
    tmp_path, raw_config, monkeypatch
):
    jobs = tmp_path / "jobs"
    (jobs / "models").mkdir(parents=True)
    (jobs / "personas.jsonl").write_text('{"id": "p1", "description": "a retiree"}\n')
    raw_config["data_generation"]["diversity"] = {"personas_file": "personas.jsonl"}
    raw_config["training"]["model"] = {"model_local_path": "models"}
    raw_config["training"]["output"] = {"local_path": "s3://bucket/judges"}
    (jobs / "run.yaml").write_text(yaml.safe_dump(raw_config), encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # the current folder holds no personas.jsonl

    config = load_run_config("jobs/run.yaml")

    assert [p.id for p in config.data_generation.diversity.all_personas] == ["p1"]
    assert config.data_generation.diversity.personas_file == str(jobs / "personas.jsonl")
    assert config.training.model.model_local_path == str(jobs / "models")
    assert config.training.output.local_path == "s3://bucket/judges"  # URLs stay as written
    # a config built in Python reads them from the current folder
    with pytest.raises(ConfigError, match="data_generation.diversity.personas_file"):
        validate_run_config(raw_config)
    monkeypatch.chdir(jobs)
    assert validate_run_config(raw_config).data_generation.diversity.personas_file == (
        "personas.jsonl"
    )


def test_load_run_config_error_names_the_file(tmp_path, raw_config):
    path = tmp_path / "run.yaml"
    path.write_text(
        yaml.safe_dump(mutated(raw_config, {"pipeline_provider": "aws"})), encoding="utf-8"
    )
    with pytest.raises(ConfigError) as caught:
        load_run_config(path)
    assert str(caught.value).splitlines() == [
        f"invalid {path} (1 problem):",
        (
            "  pipeline_provider: 'aws' — must be one of local (the Kedro runner on this machine), "
            "dask (the nodes as tasks on a Dask.distributed cluster, see docs/dask.md)"
        ),
    ]


def test_load_run_config_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_run_config(path)
    assert problem_lines(caught.value) == [f"{path}: '(file)' — config file not found"]


def test_load_run_config_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("metric_name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_run_config(path)
    assert problem_lines(caught.value) == [f"{path}: '(file)' — config file is not UTF-8 text"]


def test_load_run_config_invalid_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("run_steps: [data_generation\nmetric_name: x\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_run_config(path)
    lines = problem_lines(caught.value)
    assert len(lines) == 1
    assert re.match(
        rf"^{re.escape(str(path))}:line \d+: '\(yaml\)' — not valid YAML: ", lines[0]
    ), lines[0]


def test_load_run_config_empty_file_says_it_is_empty(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_run_config(path)
    assert problem_lines(caught.value) == [f"{path}: '(file)' — config file is empty"]


@pytest.mark.parametrize(
    "example",
    sorted(__import__("pathlib").Path(__file__).parents[2].joinpath("examples").glob("*.yaml")),
    ids=lambda p: p.stem,
)
def test_shipped_examples_validate(example, clean_env):
    config = load_run_config(example)
    assert config.data_generation is not None and config.training is not None
