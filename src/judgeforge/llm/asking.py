"""Ask, read the answer, and ask again naming what was wrong: the loop of the judge and of metric extraction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from judgeforge.llm.types import ChatMessage, LLMRequest

T = TypeVar("T")
# How the problem of a question starts when its request failed (no answer to read); reports
# count these apart from answers that were read and rejected.
REQUEST_FAILED = "request failed"


class InvalidAnswer(ValueError):
    """An answer that cannot be used; its message says why and goes into the next request."""


def json_answer_request(
    system: str,
    parts: list[str],
    attempt: int,
    problem: str,
    *,
    max_tokens: int,
    json_schema: dict[str, Any],
    schema_name: str,
) -> LLMRequest:
    """Return a request for a JSON answer; from attempt 2 its last line names what was wrong before."""
    if attempt > 1:
        note = f"(Attempt {attempt}: the previous answer was rejected — {problem}. Answer again, JSON only.)"
        parts = [*parts, note]
    return LLMRequest(
        messages=(ChatMessage("system", system), ChatMessage("user", "\n\n".join(parts))),
        temperature=0.0,
        max_tokens=max_tokens,
        json_schema=json_schema,
        schema_name=schema_name,
    )


@dataclass(frozen=True)
class Asked(Generic[T]):
    """The outcome of one question: the accepted answer, or None and why the last one was rejected."""

    value: T | None
    attempts: int
    problem: str


def ask_until_valid(
    client: Any,
    count: int,
    request: Callable[[int, int, str], LLMRequest],
    read: Callable[[int, str], T],
    retries: int,
) -> list[Asked[T]]:
    """Return one outcome per question; rejected answers are asked again at most `retries` times.

    `request(index, attempt, problem)` builds question `index` (attempt 1, 2, … name the previous
    problem, so each attempt is a new request with its own cache entry); `read(index, text)`
    returns the accepted answer or raises InvalidAnswer. Every pending question of an attempt
    is sent in one `generate` call.
    """
    outcomes: list[Asked[T] | None] = [None] * count
    problems = [""] * count
    pending = list(range(count))
    for attempt in range(1, retries + 2):
        if not pending:
            break
        responses = client.generate_sync([request(i, attempt, problems[i]) for i in pending])
        rejected = []
        for index, response in zip(pending, responses, strict=True):
            try:
                if not response.ok:
                    raise InvalidAnswer(f"{REQUEST_FAILED}: {response.error}")
                outcomes[index] = Asked(read(index, response.text), attempt, "")
            except InvalidAnswer as error:
                problems[index] = str(error)
                rejected.append(index)
        pending = rejected
    for index in pending:
        outcomes[index] = Asked(None, retries + 1, problems[index])
    return [outcome for outcome in outcomes if outcome is not None]
