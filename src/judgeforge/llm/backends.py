"""What the client needs from a provider: a chat backend and an embedding backend."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from judgeforge.llm.engine import Outcome, RequestEngine
from judgeforge.llm.errors import DeliveryShortfall
from judgeforge.llm.types import CHARS_PER_TOKEN, LLMRequest, LLMResponse

# Sees each final response; may return an awaitable that is done once the response is stored.
ResponseSink = Callable[[int, LLMResponse], Awaitable[None] | None]


class ChatBackend(Protocol):
    """Answers chat requests; calls `on_response` as each one is final so it can be cached at once."""

    provider: str
    model: str
    endpoint: str

    async def complete(
        self, requests: Sequence[LLMRequest], on_response: ResponseSink
    ) -> list[LLMResponse]: ...


@runtime_checkable
class TokenCounter(Protocol):
    """A chat backend whose model's tokenizer is on this machine."""

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


@dataclass(frozen=True, slots=True)
class EmbeddingBatch:
    """Vectors for a batch of texts, row i for text i, and the tokens they cost."""

    vectors: np.ndarray
    input_tokens: int = 0
    output_tokens: int = 0


class EmbeddingBackend(Protocol):
    """Turns texts into vectors (not necessarily normalised)."""

    provider: str
    model: str
    endpoint: str

    async def embed(self, texts: Sequence[str]) -> EmbeddingBatch: ...


async def run_chat_jobs(
    engine: RequestEngine,
    requests: Sequence[LLMRequest],
    send: Callable[[LLMRequest], Awaitable[LLMResponse]],
    on_response: ResponseSink,
) -> list[LLMResponse]:
    """Send requests through the engine; failures become responses that carry their error."""

    responses = [LLMResponse()] * len(requests)

    def finish(index: int, outcome: Outcome[LLMResponse]) -> Awaitable[None] | None:
        responses[index] = as_response(outcome)
        return on_response(index, responses[index])

    await engine.run(requests, send, finish, tokens=estimated_tokens)
    return responses


def estimated_tokens(request: LLMRequest) -> int:
    """Tokens a request may cost, as providers count it against a tokens-per-minute limit."""
    return int(sum(len(m.content) for m in request.messages) / CHARS_PER_TOKEN) + request.max_tokens


def as_response(outcome: Outcome[LLMResponse]) -> LLMResponse:
    """The response of an engine outcome, with its attempt count or its error."""
    answer = outcome.result
    if answer is None:
        return LLMResponse(error=outcome.error, attempts=outcome.attempts)
    return LLMResponse(answer.text, answer.input_tokens, answer.output_tokens, answer.finish_reason,
                       attempts=outcome.attempts)


async def run_embedding_jobs(
    engine: RequestEngine,
    texts: Sequence[str],
    batch_size: int,
    send: Callable[[Sequence[str]], Awaitable[EmbeddingBatch]],
) -> EmbeddingBatch:
    """Embed texts in batches through the engine; raises if any batch failed for good.

    The error carries the vectors of the batches that did succeed, so they can be cached.
    """
    batches = [texts[start : start + batch_size] for start in range(0, len(texts), batch_size)]
    outcomes = await engine.run(
        batches, send, lambda index, outcome: None, tokens=lambda batch: int(sum(map(len, batch)) / CHARS_PER_TOKEN)
    )
    failures = [outcome.error for outcome in outcomes if outcome.result is None]
    if failures:
        done = {
            index * batch_size + row: vector
            for index, outcome in enumerate(outcomes)
            if outcome.result is not None
            for row, vector in enumerate(outcome.result.vectors)
        }
        raise EmbeddingError(
            f"{len(failures)} of {len(batches)} embedding calls failed; first: {failures[0]}", done
        )
    results = [outcome.result for outcome in outcomes if outcome.result is not None]
    return EmbeddingBatch(
        vectors=np.concatenate([r.vectors for r in results]) if results else np.zeros((0, 0), np.float32),
        input_tokens=sum(r.input_tokens for r in results),
    )


class EmbeddingError(DeliveryShortfall):
    """Some texts could not be embedded after all retries; `done` maps text index to its vector."""

    def __init__(self, message: str, done: dict[int, np.ndarray]) -> None:
        super().__init__(message)
        self.done = done
