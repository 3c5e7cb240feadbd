"""The field tables of docs/configuration.md, generated from the config models so they never drift."""

from __future__ import annotations

import re
import types
import typing
from enum import Enum
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from judgeforge.config.data_generation import DataGenerationConfig
from judgeforge.config.run import RunHeader
from judgeforge.config.training import TrainingConfig

BEGIN = "<!-- BEGIN GENERATED FIELD TABLES (python -m judgeforge.config.reference) -->"
END = "<!-- END GENERATED FIELD TABLES -->"


def leaf_fields(model: type[BaseModel], prefix: str) -> list[tuple[str, FieldInfo]]:
    """Return (path, field) for every leaf field of a model, depth first."""
    leaves = []
    for name, field in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        nested = _model_in(field.annotation)
        leaves += leaf_fields(nested, path) if nested is not None else [(path, field)]
    return leaves


def field_rows(model: type[BaseModel], prefix: str) -> list[tuple[str, str, str, bool]]:
    """Return (path, type, default, required) for every leaf field of a model, depth first."""
    return [
        (
            path,
            _type_text(field.annotation),
            "" if field.is_required() else _default_text(field),
            field.is_required(),
        )
        for path, field in leaf_fields(model, prefix)
    ]


def is_addition(field: FieldInfo) -> bool:
    """Return whether a field is a judgeforge addition to the seed reference."""
    return bool(
        isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("judgeforge")
    )


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for candidate in typing.get_args(annotation) or (annotation,):
        if (
            isinstance(candidate, type)
            and issubclass(candidate, BaseModel)
            and candidate.__name__ != "ClassLabel"
        ):
            return candidate
    return None


def _type_text(annotation: Any) -> str:
    if typing.get_origin(annotation) is typing.Annotated:  # e.g. LocalPath: its validators aside
        return _type_text(typing.get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return f"Literal{[member.value for member in annotation]}"
    text = str(annotation) if not isinstance(annotation, type) else annotation.__name__
    text = re.sub(r"typing\.|judgeforge\.config\.\w+\.", "", text)
    text = (
        text.replace("NoneType", "null")
        .replace("Optional[", "")
        .replace("ClassLabel", "class_label")
    )
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
    sections = [
        ("Top level", RunHeader, ""),
        ("data_generation", DataGenerationConfig, "data_generation"),
        ("training", TrainingConfig, "training"),
    ]
    out = [BEGIN, ""]
    for title, model, prefix in sections:
        out += [
            f"### {title}",
            "",
            "| field | type | default | required | meaning |",
            "|---|---|---|---|---|",
        ]
        for (path, type_text, default, required), (_, field) in zip(
            field_rows(model, prefix), leaf_fields(model, prefix)
        ):
            mark = " (judgeforge)" if is_addition(field) else ""
            # a bare pipe would split the table cell
            type_cell, meaning = (
                text.replace("|", "\\|") for text in (type_text, field.description or "")
            )
            out.append(
                f"| `{path}`{mark} | `{type_cell}` | `{default}` | {'yes' if required else 'no'} | {meaning} |".replace(
                    "``", ""
                )
            )
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
