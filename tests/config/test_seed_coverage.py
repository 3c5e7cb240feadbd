"""Every field the seeds document (000: data_generation, 001: training) exists in the models with its default.

The seed files are the config specification. Their field tables are parsed here (seed 000's cells are
run together without separators, seed 001 uses `| a | b |` rows), each table is mapped to the model
prefix it documents, and every field is looked up in `RunConfig`; the documented default is compared
with the pydantic field default (so `${LUNA_OBJECT_STORE_BUCKET:-luna-ft}` is compared unresolved).
"""

from __future__ import annotations

import json
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from judgeforge.config import RunConfig, TrainingConfig

SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"
SEED_000 = SEEDS / "000_fd98b43bb4b61e15.txt"
SEED_001 = SEEDS / "001_1ebbe132ec55dfb7.txt"

pytestmark = pytest.mark.skipif(
    not (SEED_000.is_file() and SEED_001.is_file()),
    reason=f"seed specification files not found under {SEEDS} (expected a checkout next to ../shared/seeds)",
)

# seed 000 table heading -> model path prefix of its field names
TABLES_000 = {
    "metric": "data_generation.",
    "metric.class_label": "data_generation.metric.class_labels[].",
    "source_data.dataset": "data_generation.source_data.dataset.",
    "source_data.sampling": "data_generation.source_data.sampling.",
    "llm": "data_generation.llm.",
    "generation": "data_generation.generation.",
    "output": "data_generation.output.",
    "labelling": "data_generation.labelling.",
    "data_quality_metrics": "data_generation.data_quality_metrics.",
}
# rows per table, as counted in the seed: guards the parser against silently skipping rows
ROWS_000 = {
    "metric": 6,
    "metric.class_label": 3,
    "source_data.dataset": 8,
    "source_data.sampling": 5,
    "llm": 3,
    "generation": 9,
    "output": 10,
    "labelling": 2,
    "data_quality_metrics": 13,
}
TABLES_001 = {
    "metric": "training.",
    "dataset": "training.",
    "training (hyperparameters)": "training.training.",
    "output": "training.",
    "model": "training.",
}
ROWS_001 = {"metric": 2, "dataset": 10, "training (hyperparameters)": 16, "output": 6, "model": 10}

_TYPE = r"(?:string|int|float|bool|null|list\[[^\]]*\]|map\[[^\]]*\])"
_ROW_000 = re.compile(
    rf"^(?P<field>[a-z][a-z0-9_.]*?)(?P<type>{_TYPE}(?: \| {_TYPE})*)"
    r"(?P<required>Conditionally|Yes\*|Yes|No|If HF|If CSV|If object store)(?P<rest>.*)$"
)
_DEFAULT_000 = re.compile(r'^(?:"[^"]*"|-?\d+(?:\.\d+)?|true|false|null|\[\]|\{\})')


@dataclass(frozen=True)
class SeedField:
    seed: str
    table: str
    path: str  # model path, `[]` marks list items
    type: str
    required: str
    default: str | None  # the documented default as written, None when the table gives none


def parse_seed_000(text: str) -> list[SeedField]:
    fields: list[SeedField] = []
    table, has_default, in_table = None, False, False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped in TABLES_000:
            table, in_table = stripped, False
            continue
        if stripped.startswith("FieldTypeRequired"):
            has_default, in_table = "Default" in stripped, table is not None
            continue
        if not stripped:
            in_table = False
            continue
        if not in_table:
            continue
        match = _ROW_000.match(stripped)
        assert match, f"seed 000 table {table}: cannot parse row {stripped!r}"
        default = None
        if has_default:
            found = _DEFAULT_000.match(match["rest"])
            default = found.group(0) if found else None
        fields.append(
            SeedField(
                "000",
                table,
                TABLES_000[table] + match["field"],
                match["type"],
                match["required"],
                default,
            )
        )
    return fields


def parse_seed_001(text: str) -> list[SeedField]:
    fields: list[SeedField] = []
    table, columns = None, None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped in TABLES_001:
            table, columns = stripped, None
            continue
        if stripped.startswith("| Field |"):
            columns = [c.strip() for c in stripped.strip("|").split("|")]
            continue
        if stripped.startswith("|---"):
            continue
        if " | " not in stripped:  # prose after a table ends it
            if stripped:
                columns = None
            continue
        if columns is None or table is None:
            continue
        cells = [c.strip() for c in stripped.rstrip("|").split(" | ")]
        if len(cells) > 2 and cells[2] == "null":  # a `T | null` type cell was split on its pipe
            cells[1:3] = [f"{cells[1]} | null"]
        row = dict(zip(columns, cells))
        default = row.get("Default (base config)")
        fields.append(
            SeedField(
                "001",
                table,
                TABLES_001[table] + row["Field"],
                row["Type"],
                row["Required"],
                default,
            )
        )
    return fields


@pytest.fixture(scope="module")
def seed_fields() -> list[SeedField]:
    return parse_seed_000(SEED_000.read_text(encoding="utf-8")) + parse_seed_001(
        SEED_001.read_text(encoding="utf-8")
    )


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def resolve_field(path: str) -> FieldInfo | None:
    """Return the pydantic field at a model path like `data_generation.metric.class_labels[].name`."""
    model: type[BaseModel] | None = RunConfig
    field = None
    for step in path.split("."):
        if model is None:
            return None
        field = model.model_fields.get(step.removesuffix("[]"))
        if field is None:
            return None
        model = _model_in(field.annotation)
    return field


def _python_types(annotation: Any) -> set[type]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:  # a type with validators attached (config.base.LocalPath)
        return _python_types(typing.get_args(annotation)[0])
    if origin is Literal:
        return {type(v) for v in typing.get_args(annotation)}
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_python_types(a) for a in typing.get_args(annotation)))
    if origin is not None:
        return {origin}
    return {type(None) if annotation is None else annotation}


_SEED_TYPES = {"string": str, "int": int, "float": float, "bool": bool, "null": type(None)}


def _seed_types(type_text: str) -> set[type]:
    found = set()
    for part in type_text.split(" | "):
        part = part.strip()
        found.add(
            list
            if part.startswith("list[")
            else dict
            if part.startswith("map[")
            else _SEED_TYPES[part]
        )
    return found


def _same_default(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or expected is None:
        return actual is expected
    if isinstance(expected, float):
        return isinstance(actual, float) and actual == pytest.approx(expected)
    if isinstance(expected, int):
        return type(actual) is int and actual == expected
    return type(actual) is type(expected) and actual == expected


def test_seed_tables_parse_completely(seed_fields):
    counts_000 = {t: sum(f.table == t for f in seed_fields if f.seed == "000") for t in TABLES_000}
    counts_001 = {t: sum(f.table == t for f in seed_fields if f.seed == "001") for t in TABLES_001}
    assert counts_000 == ROWS_000
    assert counts_001 == ROWS_001
    paths = {f.path for f in seed_fields}
    # spot checks of the parser on both layouts
    assert {
        "data_generation.metric.name",
        "data_generation.source_data.dataset.columns.features",
        "data_generation.source_data.dataset.huggingface.name",
        "data_generation.source_data.dataset.csv.file_path",
        "data_generation.generation.async_config.max_concurrent_requests",
        "data_generation.data_quality_metrics.umap.enabled",
        "data_generation.data_quality_metrics.drift.k_neighbors",
        "training.metric.classes",
        "training.training.use_wandb",
        "training.model.model_local_path",
    } <= paths


def test_field_resolver_finds_nested_fields_and_rejects_unknown_ones():
    assert resolve_field("data_generation.metric.class_labels[].rubric") is not None
    assert resolve_field("training.training.bf16").default is True
    assert resolve_field("data_generation.metric.nonexistent") is None
    assert resolve_field("data_generation.llm.provider.deeper") is None
    assert (
        _same_default(0.2, 0.2)
        and not _same_default(0.2, 0.3)
        and not _same_default(1, True)
        and not _same_default("", None)
    )


def test_every_seed_field_exists_in_the_models(seed_fields):
    missing = [
        f"{f.seed} [{f.table}] {f.path}" for f in seed_fields if resolve_field(f.path) is None
    ]
    assert not missing, "seed fields missing from the models:\n" + "\n".join(missing)


def test_every_seed_default_is_the_model_default(seed_fields):
    wrong = []
    checked = 0
    for f in seed_fields:
        field = resolve_field(f.path)
        if field is None or f.default is None:
            continue
        expected = json.loads(f.default)
        actual = field.get_default(call_default_factory=True)
        checked += 1
        if actual is PydanticUndefined or not _same_default(expected, actual):
            wrong.append(f"{f.seed} {f.path}: seed default {f.default}, model default {actual!r}")
    assert not wrong, "defaults that differ from the seeds:\n" + "\n".join(wrong)
    assert checked >= 80, checked  # 000 documents ~40 defaults, 001 ~44


def test_every_seed_type_is_accepted_by_the_model(seed_fields):
    wrong = []
    for f in seed_fields:
        field = resolve_field(f.path)
        if field is None:
            continue
        accepted = _python_types(field.annotation)
        if not _seed_types(f.type) <= accepted:
            wrong.append(
                f"{f.seed} {f.path}: seed type {f.type}, model annotation {field.annotation}"
            )
    assert not wrong, "types that do not accept the documented type:\n" + "\n".join(wrong)


def test_fields_required_without_default_in_seed_000_are_required(seed_fields):
    loose = [
        f.path
        for f in seed_fields
        if f.seed == "000"
        and f.required == "Yes"
        and f.default is None
        and not resolve_field(f.path).is_required()
    ]
    required = [
        f.path for f in seed_fields if f.seed == "000" and f.required == "Yes" and f.default is None
    ]
    assert (
        "data_generation.output.dataset.repo_name" in required
        and "data_generation.metric.class_labels[].name" in required
    )
    assert not loose, (
        "documented as required with no default, but optional in the models:\n" + "\n".join(loose)
    )


def test_luna_bucket_defaults_are_unresolved_env_references(seed_fields):
    luna = [f for f in seed_fields if f.default == '"${LUNA_OBJECT_STORE_BUCKET:-luna-ft}"']
    assert len(luna) == 4  # output (000); dataset, output, model (001)
    for f in luna:
        assert resolve_field(f.path).default == "${LUNA_OBJECT_STORE_BUCKET:-luna-ft}", f.path


def test_prompt_template_is_required():
    text = SEED_001.read_text(encoding="utf-8")
    assert "prompt_template is required." in text
    assert TrainingConfig.model_fields["prompt_template"].is_required()


def test_top_level_keys_of_the_seed_example_are_the_defaults():
    text = SEED_000.read_text(encoding="utf-8")
    documented = {}
    for line in text.splitlines():
        match = re.match(r"^(run_steps|pipeline_provider|metric_name): (.+)$", line)
        if match:
            documented[match[1]] = yaml.safe_load(match[2])
    assert documented == {
        "run_steps": ["data_generation", "training"],
        "pipeline_provider": "local",
        "metric_name": "custom",
    }
    for key, value in documented.items():
        assert RunConfig.model_fields[key].get_default(call_default_factory=True) == value, key
