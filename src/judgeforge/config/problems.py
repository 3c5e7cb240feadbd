"""Config problems and the error that lists all of them at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from judgeforge.errors import UserError

UNKNOWN_FIELD = "unknown field (check the spelling against the config reference)"


class _Missing:
    def __repr__(self) -> str:
        return "(missing)"


MISSING = _Missing()


@dataclass(frozen=True)
class Problem:
    """One broken rule: where it is, what was given, what the rule says."""

    path: str
    value: Any
    rule: str

    def __str__(self) -> str:
        return f"{self.path}: {_short_repr(self.value)} — {self.rule}"


class ConfigError(UserError, ValueError):
    """A config that breaks one or more rules; `str()` gives one line per problem."""

    def __init__(self, problems: list[Problem], source: str = "config"):
        self.problems = problems
        self.source = source
        lines = "\n".join(f"  {p}" for p in problems)
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"invalid {source} ({count}):\n{lines}")


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def join_path(prefix: str, *parts: Any) -> str:
    """Return a dotted path; list indices are written as [i]."""
    path = prefix
    for part in parts:
        if isinstance(part, int):
            path = f"{path}[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


def problems_from_validation_error(error: ValidationError, prefix: str = "") -> list[Problem]:
    """Return one Problem per pydantic error, with dotted paths under `prefix`."""
    return [
        Problem(
            join_path(prefix, *item["loc"]),
            MISSING if item["type"] == "missing" else item.get("input"),
            _rule_text(item),
        )
        for item in error.errors(include_url=False)
    ]


def _rule_text(item: dict) -> str:
    kind = item["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return UNKNOWN_FIELD
    if kind in ("literal_error", "enum"):
        return f"must be one of {item['ctx']['expected']}"
    return item["msg"].removeprefix("Value error, ")
