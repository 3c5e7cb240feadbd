"""The field tables of docs/configuration.md, generated from the config models so they never drift."""

from __future__ import annotations

import re
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from judgeforge.config.data_generation import DataGenerationConfig
from judgeforge.config.run import RunHeader
from judgeforge.config.training import TrainingConfig

BEGIN = "<!-- BEGIN GENERATED FIELD TABLES (python -m judgeforge.config.reference) -->"
END = "<!-- END GENERATED FIELD TABLES -->"
# Fields judgeforge adds to the seed reference (everything else is the seed's, verbatim).
ADDITIONS = {
    "data_generation.llm.base_url",
    "data_generation.llm.api_version",
    "data_generation.llm.temperature",
    "data_generation.llm.max_output_tokens",
    "data_generation.generation.async_config.request_timeout_seconds",
    "data_generation.generation.async_config.max_retries",
    "data_generation.generation.async_config.adaptive_concurrency",
    "data_generation.generation.max_attempts_per_example",
    "data_generation.labelling.judge_provider",
    "data_generation.labelling.judge_model",
    "data_generation.labelling.disagreement_policy",
    "data_generation.labelling.invalid_answer_retries",
    "training.training.validation_fraction",
    "training.training.early_stopping_patience",
    "training.training.calibrate",
    "training.model.head",
    "training.model.encoder_name",
    "training.model.encoder_learning_rate",
}


def field_rows(model: type[BaseModel], prefix: str) -> list[tuple[str, str, str, bool]]:
    """Return (path, type, default, required) for every leaf field of a model, depth first."""
    rows = []
    for name, field in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        nested = _model_in(field.annotation)
        if nested is not None:
            rows += field_rows(nested, path)
            continue
        default = "" if field.is_required() else _default_text(field)
        rows.append((path, _type_text(field.annotation), default, field.is_required()))
    return rows


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for candidate in typing.get_args(annotation) or (annotation,):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel) and candidate.__name__ != "ClassLabel":
            return candidate
    return None


def _type_text(annotation: Any) -> str:
    text = str(annotation) if not isinstance(annotation, type) else annotation.__name__
    text = re.sub(r"typing\.|judgeforge\.config\.\w+\.", "", text)
    text = text.replace("NoneType", "null").replace("Optional[", "").replace("ClassLabel", "class_label")
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        text = " | ".join(_type_text(a) for a in typing.get_args(annotation))
    return text


def _default_text(field: Any) -> str:
    value = field.default_factory() if field.default_factory is not None else field.default
    if value is PydanticUndefined:
        return ""
    if isinstance(value, BaseModel):
        return ""
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "null"
    return str(value).replace("True", "true").replace("False", "false").replace("'", "")


def render_tables() -> str:
    """Return the markdown field tables of every section."""
    sections = [("Top level", RunHeader, ""), ("data_generation", DataGenerationConfig, "data_generation"), ("training", TrainingConfig, "training")]
    out = [BEGIN, ""]
    for title, model, prefix in sections:
        out += [f"### {title}", "", "| field | type | default | required |", "|---|---|---|---|"]
        for path, type_text, default, required in field_rows(model, prefix):
            mark = " (judgeforge)" if path in ADDITIONS else ""
            type_cell = type_text.replace(" | ", " \\| ")  # a bare pipe would split the table cell
            out.append(f"| `{path}`{mark} | `{type_cell}` | `{default}` | {'yes' if required else 'no'} |".replace("``", ""))
        out.append("")
    out.append(END)
    return "\n".join(out)


def update_document(text: str) -> str:
    """Return the document with its generated section replaced by fresh tables."""
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + render_tables() + text[end:]


if __name__ == "__main__":
    from pathlib import Path

    document = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"
    document.write_text(update_document(document.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"updated {document}")
