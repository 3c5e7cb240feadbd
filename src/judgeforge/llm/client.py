"""The one interface callers use: `generate(requests)` and `embed(texts)` over any provider, cached."""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import time
from collections.abc import Collection, Coroutine, Mapping, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Any, TypeVar

import numpy as np
from typing_extensions import Self

from judgeforge.llm.backends import ChatBackend, EmbeddingBackend, EmbeddingError, TokenCounter
from judgeforge.llm.cache import BatchWriter, ResponseCache, request_key
from judgeforge.llm.secrets import Redactor
from judgeforge.llm.types import CHARS_PER_TOKEN, LLMRequest, LLMResponse, ModelPrice, Usage

T = TypeVar("T")


class LLMClient:
    """A chat model and an embedding model behind a response cache, with running usage totals.

    `chat_price_factor` scales the list price of chat answers: a batch API bills a share of it.
    """

    def __init__(
        self,
        chat: ChatBackend,
        embeddings: EmbeddingBackend,
        *,
        cache: ResponseCache | None,
        prices: Mapping[str, ModelPrice],
        usage: Usage,
        redact: Redactor,
        chat_price_factor: float = 1.0,
    ) -> None:
        self.chat = chat
        self.embeddings = embeddings
        self.cache = cache
        self.prices = prices
        self.usage = usage
        self.chat_price_factor = chat_price_factor
        self._redact = redact

    @property
    def provider(self) -> str:
        """Provider of the chat model."""
        return self.chat.provider

    @property
    def model(self) -> str:
        """Name of the chat model."""
        return self.chat.model

    def redact(self, text: str) -> str:
        """`text` with this client's secrets replaced by `***` (for prompts and answers saved to disk)."""
        return self._redact(text)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Token counts of `texts`: the chat model's own tokenizer when it runs here, else estimated."""
        if isinstance(self.chat, TokenCounter):
            return self.chat.count_tokens(texts)
        return [math.ceil(len(text) / CHARS_PER_TOKEN) for text in texts]

    def request_key(self, request: LLMRequest) -> str:
        """Cache key of a request for this client's chat model."""
        return request_key(self.chat.provider, self.chat.model, self.chat.endpoint, request.canonical())

    async def generate(self, requests: Sequence[LLMRequest]) -> list[LLMResponse]:
        """One response per request, in order; cached answers are reused and not re-sent.

        Identical requests in one call are sent once. A request that still fails after all
        retries comes back with `error` set; it is not cached, so a re-run tries it again.
        Raises ProviderError when the provider refuses the run or cannot be reached; the
        answers that arrived before are cached all the same.
        """
        started = time.perf_counter()
        keys = [self.request_key(request) for request in requests]
        cached = self.cache.get_responses(keys) if self.cache else {}
        self.usage.cache_hits += sum(1 for key in keys if key in cached)
        pending = first_occurrences(keys, skip=cached.keys())
        answered: dict[str, LLMResponse] = {}
        writer = BatchWriter(self.cache, self.chat.provider, self.chat.model) if self.cache else None

        def on_response(position: int, response: LLMResponse) -> asyncio.Future[None] | None:
            key = keys[pending[position]]
            answered[key] = self._scrub(response)
            self._account(answered[key])
            if writer and response.ok:
                return writer.add(key, answered[key].to_record())
            return None

        try:
            await self.chat.complete([requests[i] for i in pending], on_response)
        finally:
            if writer:
                writer.flush()
            self.usage.wall_time_s += time.perf_counter() - started
        return [
            LLMResponse.from_record(cached[key]) if key in cached else answered[key] for key in keys
        ]

    def generate_sync(self, requests: Sequence[LLMRequest]) -> list[LLMResponse]:
        """`generate` for plain code, also inside a running event loop (a notebook cell)."""
        return run_coroutine(self.generate(requests))

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors, row i for texts[i]; cached vectors are reused."""
        started = time.perf_counter()
        backend = self.embeddings
        keys = [request_key(backend.provider, backend.model, backend.endpoint, text) for text in texts]
        vectors = self.cache.get_embeddings(keys) if self.cache else {}
        self.usage.cache_hits += sum(1 for key in keys if key in vectors)
        missing = {key: text for key, text in zip(keys, texts) if key not in vectors}
        if missing:
            try:
                batch = await backend.embed(list(missing.values()))
            except EmbeddingError as error:  # keep what was paid for, so a re-run asks only for the rest
                pending = list(missing)
                made = {pending[i]: vector for i, vector in error.done.items()}
                if self.cache and made:
                    normalised = l2_normalise(np.stack(list(made.values())))
                    self.cache.put_embeddings(backend.provider, backend.model, dict(zip(made, normalised)))
                raise
            fresh = dict(zip(missing, l2_normalise(batch.vectors)))
            self._charge(backend.model, batch.input_tokens, 0)
            if self.cache:
                self.cache.put_embeddings(backend.provider, backend.model, fresh)
            vectors.update(fresh)
        self.usage.wall_time_s += time.perf_counter() - started
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([vectors[key] for key in keys]).astype(np.float32, copy=False)

    def close(self) -> None:
        """Release the cache database and whatever the chat backend holds (the local provider's worker processes)."""
        if self.cache:
            self.cache.close()
        close_chat = getattr(self.chat, "close", None)
        if close_chat is not None:
            close_chat()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LLMClient(provider={self.provider!r}, model={self.model!r}, embeddings={self.embeddings.model!r})"

    def _account(self, response: LLMResponse) -> None:
        """Count a fresh response: success or failure, tokens and cost."""
        self.usage.requests += 1
        if not response.ok:
            self.usage.failed += 1
            return
        self.usage.succeeded += 1
        self._charge(
            self.chat.model, response.input_tokens, response.output_tokens, self.chat_price_factor
        )

    def _scrub(self, response: LLMResponse) -> LLMResponse:
        """The response with any secret an endpoint echoed back removed from its text."""
        scrubbed = self._redact(response.text)
        return response if scrubbed == response.text else replace(response, text=scrubbed)

    def _charge(
        self, model: str, input_tokens: int, output_tokens: int, price_factor: float = 1.0
    ) -> None:
        """Add tokens, and their cost (the list price times `price_factor`) when the model has a price."""
        self.usage.input_tokens += input_tokens
        self.usage.output_tokens += output_tokens
        price = self.prices.get(model)
        if price is None:
            self.usage.priced = self.usage.priced and (input_tokens + output_tokens == 0)
            return
        self.usage.cost_usd += price.cost(input_tokens, output_tokens) * price_factor


def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """Return the coroutine's result, from plain code or from inside a running loop (notebooks)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    # asyncio.run refuses to nest; a worker thread gets a loop of its own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def first_occurrences(keys: Sequence[str], skip: Collection[str]) -> list[int]:
    """Index of the first occurrence of each key not in `skip`, in order."""
    seen: set[str] = set()
    positions: list[int] = []
    for index, key in enumerate(keys):
        if key not in skip and key not in seen:
            seen.add(key)
            positions.append(index)
    return positions


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    matrix = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)
