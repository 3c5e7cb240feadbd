"""Chat requests through provider batch APIs; here the generic part and OpenAI's Batch API.

`ProviderBatchChat` holds what every provider's batches share: only uncached requests go out,
each keyed by its cache key; the batch is noted in the ledger before it is polled; answers are
delivered and cached as each batch is collected. Subclasses speak one provider's protocol:
`BatchChat` the OpenAI Batch API (JSONL upload, batch create, poll, download, answers by
custom_id), `gemini.GeminiBatchChat` Gemini's inline batch jobs.

A batch is billed at the provider's batch price (`Provider.batch_price_factor`) and answers
within its 24-hour window instead of seconds. Each request's custom_id is its cache key, so
answers land in the response cache exactly as online answers do (a rerun pays nothing, and
switching `batch` on or off reuses them). The batch id goes into the cache's ledger as soon as
the batch exists: a killed run finds it there and resumes polling instead of paying twice.
Control calls (files, batches, jobs) go through the provider's official client (`openai`,
`google-genai`), which retries them itself; throughput is no concern here, unlike the online
path (see openai_compatible.py).
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import openai

from judgeforge import progress
from judgeforge.llm.backends import ResponseSink
from judgeforge.llm.cache import ResponseCache, request_key
from judgeforge.llm.engine import EngineSettings, PermanentError, TransientError
from judgeforge.llm.errors import BatchFailed, ProviderError, ProviderUnreachable
from judgeforge.llm.openai_compatible import (
    OPENAI_BASE_URL,
    Endpoint,
    chat_payload,
    http_error,
    parse_chat_completion,
)
from judgeforge.llm.secrets import Redactor
from judgeforge.llm.types import LLMRequest, LLMResponse

BATCH_ENDPOINT = "/v1/chat/completions"
COMPLETION_WINDOW = "24h"
# OpenAI's limit on requests in one batch input file.
MAX_BATCH_REQUESTS = 50_000
# Polls start at the engine's backoff base and double up to this.
MAX_POLL_SECONDS = 60.0
ENDED = frozenset({"failed", "expired", "cancelled"})


class ProviderBatchChat(ABC):
    """A chat backend that sends the uncached requests of each `complete` call as provider batches."""

    # the most requests one batch carries
    max_requests = MAX_BATCH_REQUESTS

    def __init__(
        self,
        provider: str,
        model: str,
        endpoint: str,
        settings: EngineSettings,
        redact: Redactor,
        ledger: ResponseCache | None,
    ) -> None:
        self.provider = provider
        self.model = model
        # The online endpoint: batch and online answers to one request share a cache key.
        self.endpoint = endpoint
        self._settings = settings
        self._redact = redact
        self._ledger = ledger

    @abstractmethod
    def _api(self) -> AbstractAsyncContextManager[Any]:
        """The provider's client for one `complete` call (its connections belong to this event loop)."""

    @abstractmethod
    async def _create(self, api: Any, items: list[tuple[str, LLMRequest]]) -> str:
        """Create a batch of `items` (cache key, request); return its id."""

    @abstractmethod
    async def _collect(
        self, api: Any, batch_id: str, keys: Sequence[str]
    ) -> tuple[dict[str, LLMResponse], str]:
        """Poll a batch of `keys` until it ends; its answers by key and, unless it succeeded, why not."""

    async def complete(
        self, requests: Sequence[LLMRequest], on_response: ResponseSink
    ) -> list[LLMResponse]:
        """Answer every request from batches: resumed ones that carry it, else one submitted now.

        Answers are handed to `on_response` (cached) as each batch is collected; a batch that
        failed, expired or was cancelled raises BatchFailed once every answer that did come
        back has been handed over.
        """
        responses = [LLMResponse()] * len(requests)
        if not requests:
            return responses
        keys = [self._key(request) for request in requests]
        positions = {key: index for index, key in enumerate(keys)}
        label = f"{self._settings.progress_label} batch"
        async with self._api() as api:
            with progress.stage(
                label, len(requests), enabled=self._settings.show_progress
            ) as shown:
                waiting = self._resumable(positions.keys())
                carried = {key for carried_keys in waiting.values() for key in carried_keys}
                fresh = [index for index, key in enumerate(keys) if key not in carried]
                for start in range(0, len(fresh), self.max_requests):
                    chunk = fresh[start : start + self.max_requests]
                    batch_id = await self._submit(api, [(keys[i], requests[i]) for i in chunk])
                    waiting[batch_id] = [keys[i] for i in chunk]
                collected = await asyncio.gather(
                    *(
                        self._collect(api, batch_id, carried)
                        for batch_id, carried in waiting.items()
                    ),
                    return_exceptions=True,
                )
                ended: list[str] = []
                failure: BaseException | None = None
                for batch_id, outcome in zip(waiting, collected, strict=True):
                    if isinstance(outcome, BaseException):
                        # not collected: it stays open in the ledger, and a rerun resumes it
                        failure = failure or outcome
                        continue
                    answers, problem = outcome
                    await self._deliver(
                        batch_id,
                        waiting[batch_id],
                        answers,
                        positions,
                        responses,
                        on_response,
                        shown,
                    )
                    if self._ledger is not None:
                        self._ledger.close_batch(batch_id)
                    if problem:
                        ended.append(problem)
                if failure is not None:
                    raise failure
        if ended:
            raise BatchFailed(self._redact("; ".join(ended)))
        return responses

    async def _deliver(
        self,
        batch_id: str,
        keys: Sequence[str],
        answers: Mapping[str, LLMResponse],
        positions: Mapping[str, int],
        responses: list[LLMResponse],
        on_response: ResponseSink,
        shown: progress.Stage,
    ) -> None:
        """Hand a collected batch's answers to `on_response`; return once they are stored."""
        stored = []
        unasked: dict[str, dict[str, Any]] = {}
        for key in keys:
            answer = answers.get(key) or LLMResponse(
                error=f"batch {batch_id} returned no answer for this request", attempts=1
            )
            if key not in positions:
                if (
                    answer.ok
                ):  # paid for by an earlier run, not asked again now: cached all the same
                    unasked[key] = answer.to_record()
                continue
            responses[positions[key]] = answer
            commit = on_response(positions[key], answer)
            if commit is not None:
                stored.append(commit)
            shown.advance(
                rejected=int(not answer.ok), tokens=answer.input_tokens + answer.output_tokens
            )
        if unasked and self._ledger is not None:
            self._ledger.put_responses(self.provider, self.model, unasked)
        await asyncio.gather(*stored)

    def _key(self, request: LLMRequest) -> str:
        return request_key(self.provider, self.model, self.endpoint, request.canonical())

    def _resumable(self, keys: Any) -> dict[str, list[str]]:
        """The ledger's open batches of this model that carry any of `keys` (submitted by a killed run)."""
        if self._ledger is None:
            return {}
        open_batches = self._ledger.open_batches(self.provider, self.model, self.endpoint)
        return {
            batch_id: carried
            for batch_id, carried in open_batches.items()
            if not keys.isdisjoint(carried)
        }

    async def _submit(self, api: Any, items: list[tuple[str, LLMRequest]]) -> str:
        """Create the batch of `items` and note it in the ledger; return its id."""
        batch_id = await self._create(api, items)
        if self._ledger is not None:
            self._ledger.record_batch(
                batch_id, self.provider, self.model, self.endpoint, [key for key, _ in items]
            )
        return batch_id


class BatchChat(ProviderBatchChat):
    """Chat requests as OpenAI Batch API batches (OpenAI's own or any server speaking the protocol)."""

    def __init__(
        self,
        provider: str,
        model: str,
        endpoint: Endpoint,
        base_url: str | None,
        api_key: str | None,
        settings: EngineSettings,
        redact: Redactor,
        ledger: ResponseCache | None,
    ) -> None:
        super().__init__(provider, model, endpoint.chat_url, settings, redact, ledger)
        self._target = endpoint
        self._base_url = (base_url or OPENAI_BASE_URL).rstrip("/")
        self._api_key = api_key

    async def _create(self, api: openai.AsyncOpenAI, items: list[tuple[str, LLMRequest]]) -> str:
        """Upload the JSONL of `items` and create their batch; return its id."""
        lines = [
            json.dumps(
                {
                    "custom_id": key,
                    "method": "POST",
                    "url": BATCH_ENDPOINT,
                    "body": chat_payload(self.model, request, self._target),
                },
                ensure_ascii=False,
            )
            for key, request in items
        ]
        content = ("\n".join(lines) + "\n").encode("utf-8")
        async with self._calling("files"):
            upload = await api.files.create(
                file=("judgeforge-batch.jsonl", content), purpose="batch"
            )
        async with self._calling("batches"):
            batch = await api.batches.create(
                input_file_id=upload.id,
                endpoint=BATCH_ENDPOINT,
                completion_window=COMPLETION_WINDOW,
                metadata={"submitted_by": "judgeforge"},
            )
        return batch.id

    async def _collect(
        self, api: openai.AsyncOpenAI, batch_id: str, keys: Sequence[str]
    ) -> tuple[dict[str, LLMResponse], str]:
        """Poll a batch until it ends; return its answers by custom_id and, unless it completed, why not."""
        for delay in poll_delays(self._settings):
            async with self._calling("batches"):
                batch = await api.batches.retrieve(batch_id)
            if batch.status == "completed" or batch.status in ENDED:
                break
            await asyncio.sleep(delay)
        answers: dict[str, LLMResponse] = {}
        # An expired or cancelled batch still returns (and bills) the requests it finished.
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                async with self._calling("files"):
                    content = await api.files.content(file_id)
                answers.update(read_batch_lines(content.text))
        if batch.status == "completed":
            return answers, ""
        answered = sum(1 for answer in answers.values() if answer.ok)
        total = batch.request_counts.total if batch.request_counts else "?"
        return answers, batch_problem(
            self.provider, batch_id, f"{batch.status}{_batch_errors(batch)}", answered, total
        )

    @asynccontextmanager
    async def _api(self) -> AsyncIterator[openai.AsyncOpenAI]:
        """An openai client for one `complete` call (its connections belong to this event loop)."""
        client = openai.AsyncOpenAI(
            api_key=self._api_key or "no-key",
            base_url=self._base_url,
            max_retries=self._settings.max_retries,
            timeout=self._settings.request_timeout_seconds,
        )
        async with client:
            yield client

    @asynccontextmanager
    async def _calling(self, resource: str) -> AsyncIterator[None]:
        """Turn the openai client's errors (after its own retries) into one line that ends the run."""
        where = f"{self.provider} at {self._base_url}/{resource}"
        try:
            yield
        except openai.APIConnectionError as error:
            raise ProviderUnreachable(
                self._redact(
                    f"{where}: {error}; check the provider's base_url and that the server is running"
                )
            ) from None
        except openai.APIStatusError as error:
            failure = http_error(
                error.status_code, error.response.headers, error.response.content, where
            )
            if isinstance(failure, ProviderError):
                raise type(failure)(self._redact(str(failure))) from None
            raise BatchFailed(self._redact(f"{where}: {failure}")) from None


def poll_delays(settings: EngineSettings) -> Iterator[float]:
    """Seconds to wait between polls of a batch: from the engine's backoff base, doubling to a cap."""
    delay = max(settings.backoff_base_seconds, 0.05)
    while True:
        yield delay
        delay = min(delay * 2, MAX_POLL_SECONDS)


def batch_problem(provider: str, batch_id: str, status: str, answered: int, total: Any) -> str:
    """The line that says a batch ended without answering everything, and what a rerun does."""
    return (
        f"{provider} batch {batch_id} {status}: {answered} of {total} requests answered and "
        "cached; rerun to submit the rest as a new batch"
    )


def read_batch_lines(text: str) -> dict[str, LLMResponse]:
    """The responses in a batch output or error file (JSONL), by custom_id."""
    answers: dict[str, LLMResponse] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        answers[str(record["custom_id"])] = _batch_answer(record)
    return answers


def _batch_answer(record: Mapping[str, Any]) -> LLMResponse:
    """One line of a batch file as a response: the chat completion, or the error it carries."""
    response = record.get("response") or {}
    status = response.get("status_code")
    body = response.get("body")
    if status == 200:
        try:
            parsed = parse_chat_completion(body)
        except (TransientError, PermanentError) as error:
            return LLMResponse(error=f"{type(error).__name__}: {error}", attempts=1)
        return LLMResponse(
            parsed.text, parsed.input_tokens, parsed.output_tokens, parsed.finish_reason, attempts=1
        )
    error = record.get("error")
    if not error and isinstance(body, Mapping):
        error = body.get("error")
    detail = error.get("message") if isinstance(error, Mapping) else error
    code = error.get("code") if isinstance(error, Mapping) else None
    prefix = f"HTTP {status}" if status else f"batch error {code or ''}".rstrip()
    return LLMResponse(error=f"{prefix}: {detail}", attempts=1)


def _batch_errors(batch: Any) -> str:
    """' (first error message)' of a failed batch, or ''."""
    errors = getattr(batch.errors, "data", None) or []
    return f" ({errors[0].message})" if errors and errors[0].message else ""
