"""What the client needs from a provider: a chat backend and an embedding backend."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from judgeforge.llm.engine import Outcome, RequestEngine
from judgeforge.llm.types import LLMRequest, LLMResponse

ResponseSink = Callable[[int, LLMResponse], None]


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

    def finish(index: int, outcome: Outcome[LLMResponse]) -> None:
        responses[index] = as_response(outcome)
        on_response(index, responses[index])

    await engine.run(requests, send, finish)
    return responses


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
    """Embed texts in batches through the engine; raises if any batch failed for good."""
    batches = [texts[start : start + batch_size] for start in range(0, len(texts), batch_size)]
    outcomes = await engine.run(batches, send, lambda index, outcome: None)
    failures = [outcome.error for outcome in outcomes if outcome.result is None]
    if failures:
        raise EmbeddingError(f"{len(failures)} of {len(batches)} embedding calls failed; first: {failures[0]}")
    results = [outcome.result for outcome in outcomes if outcome.result is not None]
    return EmbeddingBatch(
        vectors=np.concatenate([r.vectors for r in results]) if results else np.zeros((0, 0), np.float32),
        input_tokens=sum(r.input_tokens for r in results),
    )


class EmbeddingError(RuntimeError):
    """Some texts could not be embedded after all retries."""
