"""`${VAR}`, `${VAR:-default}` and `${VAR-default}` in config strings and in the model defaults."""

from __future__ import annotations

import pytest
import yaml

from judgeforge.config import ConfigError, load_run_config, validate_run_config
from judgeforge.config.data_generation import LUNA_BUCKET_DEFAULT, OutputConfig
from judgeforge.config.env import resolve_env_references
from tests.config.conftest import assert_problem, config_error, mutated, problem_lines

VAR = "JUDGEFORGE_TEST_VAR"
LUNA = "LUNA_OBJECT_STORE_BUCKET"


def ref(tail: str = "") -> str:
    """Return `${JUDGEFORGE_TEST_VAR<tail>}`, e.g. ref(":-x") is `${JUDGEFORGE_TEST_VAR:-x}`."""
    return "${" + VAR + tail + "}"


@pytest.fixture
def env(monkeypatch):
    monkeypatch.delenv(VAR, raising=False)
    monkeypatch.delenv(LUNA, raising=False)
    return monkeypatch


# (text, value of VAR or None for unset, expected result)
RESOLUTION = [
    pytest.param(ref(":-fallback"), None, "fallback", id="colon-dash-unset"),
    pytest.param(ref(":-fallback"), "", "fallback", id="colon-dash-empty"),
    pytest.param(ref(":-fallback"), "given", "given", id="colon-dash-set"),
    pytest.param(ref("-fallback"), None, "fallback", id="dash-unset"),
    pytest.param(ref("-fallback"), "", "", id="dash-empty-keeps-empty"),
    pytest.param(ref("-fallback"), "given", "given", id="dash-set"),
    pytest.param(ref(), "given", "given", id="plain-set"),
    pytest.param(ref(), "", "", id="plain-empty"),
    pytest.param(
        f"s3://{ref(':-bucket')}/runs/{ref(':-bucket')}",
        "team",
        "s3://team/runs/team",
        id="embedded-twice",
    ),
    pytest.param(ref(":-"), None, "", id="empty-default"),
    pytest.param(ref(":-a-b/c:d"), None, "a-b/c:d", id="default-with-punctuation"),
    pytest.param(
        f"no reference ${VAR} here",
        "given",
        f"no reference ${VAR} here",
        id="bare-dollar-untouched",
    ),
]


@pytest.mark.parametrize(("text", "value", "expected"), RESOLUTION)
def test_resolve_env_references(env, text, value, expected):
    if value is not None:
        env.setenv(VAR, value)
    assert resolve_env_references(text) == expected


def test_unset_reference_without_default_raises(env):
    with pytest.raises(
        ValueError, match=f"environment variable {VAR} is not set and has no default"
    ):
        resolve_env_references(ref())


@pytest.mark.parametrize(("text", "value", "expected"), RESOLUTION)
def test_references_resolve_inside_the_config(env, raw_config, text, value, expected):
    if value is not None:
        env.setenv(VAR, value)
    config = validate_run_config(mutated(raw_config, {"training.output.model_name": text}))
    assert config.training.output.model_name == expected


def test_unset_reference_is_a_problem_naming_the_variable_and_the_field(env, raw_config):
    error = config_error(mutated(raw_config, {"data_generation.output.local_path": ref() + "/out"}))
    line = assert_problem(
        error,
        "data_generation.output.local_path",
        f"environment variable {VAR} is not set and has no default",
    )
    assert line.startswith(f"data_generation.output.local_path: '{ref()}/out' — "), line
    assert len(problem_lines(error)) == 1


def test_unset_references_in_two_sections_are_both_reported(env, raw_config):
    raw = mutated(raw_config, {"data_generation.llm.model": ref(), "training.model.name": ref()})
    error = config_error(raw)
    assert_problem(error, "data_generation.llm.model", VAR)
    assert_problem(error, "training.model.name", VAR)


BUCKET_FIELDS = [
    ("data_generation", "output", "object_store_bucket"),
    ("training", "dataset", "object_store_bucket"),
    ("training", "output", "object_store_bucket"),
    ("training", "model", "model_object_store_bucket"),
]


def _buckets(config) -> list[str]:
    return [
        getattr(getattr(getattr(config, section), part), field)
        for section, part, field in BUCKET_FIELDS
    ]


def test_model_default_bucket_is_the_env_reference_before_resolution():
    assert (
        OutputConfig.model_fields["object_store_bucket"].default
        == LUNA_BUCKET_DEFAULT
        == "${LUNA_OBJECT_STORE_BUCKET:-luna-ft}"
    )


def test_model_default_bucket_resolves_to_luna_ft_when_unset(env, raw_config):
    assert _buckets(validate_run_config(raw_config)) == ["luna-ft"] * 4


def test_model_default_bucket_resolves_to_luna_ft_when_empty(env, raw_config):
    env.setenv(LUNA, "")
    assert _buckets(validate_run_config(raw_config)) == ["luna-ft"] * 4


def test_model_default_bucket_follows_the_environment(env, raw_config):
    env.setenv(LUNA, "team-bucket")
    assert _buckets(validate_run_config(raw_config)) == ["team-bucket"] * 4


def test_explicit_bucket_wins_over_environment(env, raw_config):
    env.setenv(LUNA, "team-bucket")
    config = validate_run_config(
        mutated(raw_config, {"data_generation.output.object_store_bucket": "explicit"})
    )
    assert config.data_generation.output.object_store_bucket == "explicit"
    assert config.training.output.object_store_bucket == "team-bucket"


def test_default_bucket_satisfies_push_to_object_store(env, raw_config):
    config = validate_run_config(
        mutated(raw_config, {"data_generation.output.push_to_object_store": True})
    )
    assert config.data_generation.output.object_store_bucket == "luna-ft"


def test_reference_that_resolves_empty_breaks_the_object_store_rule(env, raw_config):
    env.setenv(VAR, "")
    raw = mutated(
        raw_config,
        {"training.output": {"push_to_object_store": True, "object_store_bucket": ref("-")}},
    )
    assert_problem(
        config_error(raw),
        "training.output.object_store_bucket",
        "required when push_to_object_store is true",
    )


YAML_TEXT = """
run_steps: [data_generation, training]
data_generation:
  metric:
    name: tox
    description: Toxic?
    type: binary
    input_format: single
    class_labels:
      - {name: toxic, label: 1, rubric: insults}
      - {name: clean, label: 0, rubric: polite}
  source_data:
    dataset:
      source_type: csv
      columns: {features: [text], label: label}
      csv: {file_path: "${JUDGEFORGE_TEST_VAR:-data/01_raw/seed.csv}"}
  output:
    push_to_object_store: true
    dataset: {repo_name: tox}
training:
  metric: {type: boolean}
  prompt_template: "{text}"
  output: {model_name: "${JUDGEFORGE_TEST_VAR-judge}"}
"""


def test_yaml_file_references_resolve_with_defaults(env, tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(YAML_TEXT, encoding="utf-8")
    config = load_run_config(path)
    assert config.data_generation.source_data.dataset.csv.file_path == "data/01_raw/seed.csv"
    assert config.training.output.model_name == "judge"
    assert config.data_generation.output.object_store_bucket == "luna-ft"


def test_yaml_file_references_resolve_from_environment(env, tmp_path):
    env.setenv(VAR, "/data/seed.csv")
    env.setenv(LUNA, "team-bucket")
    path = tmp_path / "run.yaml"
    path.write_text(YAML_TEXT, encoding="utf-8")
    config = load_run_config(path)
    assert config.data_generation.source_data.dataset.csv.file_path == "/data/seed.csv"
    assert config.training.output.model_name == "/data/seed.csv"
    assert config.data_generation.output.object_store_bucket == "team-bucket"


def test_yaml_file_with_unset_reference_names_file_field_and_variable(env, tmp_path):
    path = tmp_path / "run.yaml"
    raw = yaml.safe_load(YAML_TEXT)
    raw["training"]["model"] = {"name": ref()}
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_run_config(path)
    assert str(caught.value).splitlines() == [
        f"invalid {path} (1 problem):",
        f"  training.model.name: '{ref()}' — environment variable {VAR} is not set and has no default",
    ]
