"""Requests, responses, usage and prices: the vocabulary shared by every provider."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from judgeforge.errors import UserError

# Characters per token assumed where a model's tokenizer is not on this machine (estimates,
# pacing by tokens_per_minute, the pre-run cost estimate).
CHARS_PER_TOKEN = 3.5

# The end of a sentence: its mark, any closing quotes or brackets, then a space or the end.
SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*(?=\s|$)")

Role = Literal["system", "user", "assistant"]
ROLES: frozenset[str] = frozenset({"system", "user", "assistant"})


class LLMConfigError(UserError, ValueError):
    """A user-fixable problem with how an LLM client was configured or called."""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One chat turn."""

    role: Role
    content: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise LLMConfigError(f"message role {self.role!r} is not one of {sorted(ROLES)}")


@dataclass(frozen=True, slots=True)
class LLMRequest:
    """One chat completion request; equal requests share one cache entry and one network call."""

    messages: tuple[ChatMessage, ...]
    temperature: float = 0.0
    max_tokens: int = 256
    json_schema: Mapping[str, Any] | None = None
    schema_name: str = "response"
    seed: int | None = None
    # The answer ends before the first of these texts (OpenAI's `stop`); empty: no stop text.
    stop: tuple[str, ...] = ()
    # Line labels a plain answer writes in this order (`query:`, `context:`, ...); the local
    # provider hands a model that ends its turn early the next missing label, and ends the
    # answer where a label comes again after all were written. Empty: no layout.
    layout: tuple[str, ...] = ()
    # Real lengths in characters of a plain answer's fields, in the order of `layout` (one for an
    # answer of one text). A small model rarely ends a long field on its own, so the local
    # provider ends each field at its first sentence end (SENTENCE_END) or line break once the
    # field holds that many characters: it hands the model the next label, or ends the answer
    # after the last field. Empty: fields end only where the model ends them.
    field_chars: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "messages", tuple(_as_message(m) for m in self.messages))
        object.__setattr__(self, "stop", tuple(self.stop))
        object.__setattr__(self, "layout", tuple(self.layout))
        object.__setattr__(self, "field_chars", tuple(self.field_chars))
        if not self.messages:
            raise LLMConfigError("an LLMRequest needs at least one message")
        if self.max_tokens < 1:
            raise LLMConfigError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if not 0.0 <= self.temperature <= 2.0:
            raise LLMConfigError(f"temperature must be within [0, 2], got {self.temperature}")

    @classmethod
    def from_prompt(cls, prompt: str, *, system: str | None = None, **params: Any) -> LLMRequest:
        """A request made of an optional system message and one user message."""
        turns = ([ChatMessage("system", system)] if system else []) + [ChatMessage("user", prompt)]
        return cls(messages=tuple(turns), **params)

    def canonical(self) -> dict[str, Any]:
        """Plain, order-stable form of the request, the part of the cache key it contributes."""
        return {
            "messages": [[m.role, m.content] for m in self.messages],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "json_schema": self.json_schema,
            "schema_name": self.schema_name if self.json_schema is not None else None,
            "seed": self.seed,
            # Only when set, so requests without stop texts keep the cache keys they always had.
            **({"stop": list(self.stop)} if self.stop else {}),
            **({"layout": list(self.layout)} if self.layout else {}),
            **({"field_chars": list(self.field_chars)} if self.field_chars else {}),
        }


def _as_message(message: ChatMessage | Mapping[str, str]) -> ChatMessage:
    """Accept `{"role": ..., "content": ...}` dicts as well as ChatMessage objects."""
    if isinstance(message, ChatMessage):
        return message
    if isinstance(message, Mapping) and {"role", "content"} <= message.keys():
        return ChatMessage(role=message["role"], content=message["content"])  # type: ignore[arg-type]
    raise LLMConfigError(f"a message must be a ChatMessage or a role/content dict, got {message!r}")


@dataclass(frozen=True, slots=True)
class LLMResponse:
    """The outcome of one request: its text, or the error that remained after all retries."""

    text: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str | None = None
    from_cache: bool = False
    error: str | None = None
    attempts: int = 0

    @property
    def ok(self) -> bool:
        """Whether the request produced an answer."""
        return self.error is None

    def json(self) -> Any:
        """The text parsed as JSON (raises json.JSONDecodeError when it is not JSON)."""
        return json.loads(self.text)

    def to_record(self) -> dict[str, Any]:
        """The fields worth caching: everything but the per-run ones."""
        return {
            "text": self.text,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "finish_reason": self.finish_reason,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> LLMResponse:
        """Rebuild a cached response."""
        return cls(**record, from_cache=True)


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """List price of a model in USD per million tokens."""

    input_per_million: float
    output_per_million: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """USD cost of one call."""
        return (
            input_tokens * self.input_per_million + output_tokens * self.output_per_million
        ) / 1e6


# List prices (USD / 1M tokens); override them with `price_table=`. PRICES_AS_OF is the month of
# the newest copy of the providers' price pages they were checked against (pre-run estimates
# print it): unchanged from 2025-06 through 2026-06; gemini-2.0-flash was retired on 2026-06-01.
PRICES_AS_OF = "2026-06"
DEFAULT_PRICES: dict[str, ModelPrice] = {
    "gpt-4o-mini": ModelPrice(0.15, 0.60),
    "gpt-4o": ModelPrice(2.50, 10.00),
    "gpt-4.1-mini": ModelPrice(0.40, 1.60),
    "gpt-4.1-nano": ModelPrice(0.10, 0.40),
    "gpt-4.1": ModelPrice(2.00, 8.00),
    "text-embedding-3-small": ModelPrice(0.02, 0.0),
    "text-embedding-3-large": ModelPrice(0.13, 0.0),
    "gemini-2.0-flash": ModelPrice(0.10, 0.40),
    "gemini-2.5-flash-lite": ModelPrice(0.10, 0.40),
    "gemini-2.5-flash": ModelPrice(0.30, 2.50),
    "gemini-2.5-pro": ModelPrice(1.25, 10.00),
    "gemini-embedding-001": ModelPrice(0.15, 0.0),
    # The embedded models run on this machine.
    "smollm2-135m-instruct": ModelPrice(0.0, 0.0),
    "all-MiniLM-L6-v2": ModelPrice(0.0, 0.0),
}


def price_table(
    overrides: Mapping[str, ModelPrice | Mapping[str, float] | Sequence[float]] | None = None,
) -> dict[str, ModelPrice]:
    """Default prices updated with `overrides` given as ModelPrice, {input, output} or (input, output)."""
    table = dict(DEFAULT_PRICES)
    for model, price in (overrides or {}).items():
        table[model] = _as_price(model, price)
    return table


def _as_price(model: str, price: ModelPrice | Mapping[str, float] | Sequence[float]) -> ModelPrice:
    """Read one price table entry."""
    if isinstance(price, ModelPrice):
        return price
    if isinstance(price, Mapping) and {"input", "output"} <= price.keys():
        return ModelPrice(float(price["input"]), float(price["output"]))
    if isinstance(price, Sequence) and not isinstance(price, str) and len(price) == 2:
        return ModelPrice(float(price[0]), float(price[1]))
    raise LLMConfigError(
        f"price_table[{model!r}] must be {{input: USD per 1M tokens, output: USD per 1M tokens}}, "
        f"got {price!r}"
    )


@dataclass(slots=True)
class Usage:
    """Running totals of one client: what was asked, retried, served from cache, and paid."""

    requests: int = 0
    succeeded: int = 0
    failed: int = 0
    retries: int = 0
    throttled: int = 0
    cache_hits: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    wall_time_s: float = 0.0
    priced: bool = field(default=True)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict, for reports."""
        return asdict(self)
