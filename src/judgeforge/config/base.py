"""The base of every config model, and how a rule reports what it finds through pydantic."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from judgeforge.config.env import resolve_env_references

LUNA_BUCKET_DEFAULT = "${LUNA_OBJECT_STORE_BUCKET:-luna-ft}"
OBJECT_STORE_FIELDS = ("object_store_bucket", "object_store_blob")
RULE_ERROR = "rule"
# Validation context that checks fields but not the rules between them: the cross-section pass
# reads parts of a config this way, so a part whose own rules fail still feeds the other rules.
FIELDS_ONLY = {"rules": False}
# Validation context key: the folder a config's relative paths start at (a run YAML's own folder).
CONFIG_FOLDER = "config_folder"


class Broken(NamedTuple):
    """One broken rule, at a path relative to the model whose rule found it."""

    loc: tuple[str | int, ...]
    value: Any
    rule: str


def broken(rule: str) -> PydanticCustomError:
    """Return the error a field validator raises for a broken rule (pydantic adds the path)."""
    return PydanticCustomError(RULE_ERROR, "{rule}", {"rule": rule})


def raise_broken(title: str, problems: Iterable[Broken]) -> None:
    """Raise every broken rule at once as one ValidationError; return when there is none."""
    details = [InitErrorDetails(type=broken(p.rule), loc=p.loc, input=p.value) for p in problems]
    if details:
        raise ValidationError.from_exception_data(title, details)


def model_rules(method: Callable[[Any], Iterable[Broken]]) -> Any:
    """Make `method` (the broken rules of a model whose fields validated) an after-validator."""

    def check(self: BaseModel, info: ValidationInfo) -> BaseModel:
        if (info.context or {}).get("rules", True):
            raise_broken(type(self).__name__, method(self))
        return self

    check.__doc__ = method.__doc__
    return model_validator(mode="after")(check)


def required_when(model: BaseModel, switch: str, fields: Iterable[str]) -> list[Broken]:
    """Return a problem for each blank field of `fields` when the model's `switch` is on."""
    if not getattr(model, switch):
        return []
    values = {name: getattr(model, name) for name in fields}
    return [
        Broken((name,), value, f"required when {switch} is true")
        for name, value in values.items()
        if not (value and value.strip())
    ]


def _anchored(path: str, info: ValidationInfo) -> str:
    """Return `path` joined to the validation context's config folder when relative and local."""
    folder = (info.context or {}).get(CONFIG_FOLDER)
    if folder is None or not path or "://" in path:
        return path
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else str(Path(folder) / path)


# A local file or folder the run reads (and validation may check): anchored at the config's folder
# here, so the checks and every later reader see the same file whatever the current folder. Seed
# files and outputs stay as written (messages name them so; `data/...` outputs follow data_root)
# and judgeforge.run_globals anchors them at the same folder.
LocalPath = Annotated[str, AfterValidator(_anchored)]


def judgeforge_field(default: Any = ..., **kwargs: Any) -> Any:
    """Return a Field that judgeforge adds to the seed reference (marked so in the docs)."""
    return Field(default, json_schema_extra={"judgeforge": True}, **kwargs)


class StrictModel(BaseModel):
    """Base for config models: unknown keys are errors; `${VAR:-default}` strings are resolved."""

    # validate_default: defaults such as ${LUNA_OBJECT_STORE_BUCKET:-luna-ft} resolve too
    model_config = ConfigDict(extra="forbid", validate_assignment=True, validate_default=True)

    @field_validator("*", mode="before")
    @classmethod
    def _resolve_environment(cls, value: object) -> object:
        return resolve_env_references(value) if isinstance(value, str) else value
