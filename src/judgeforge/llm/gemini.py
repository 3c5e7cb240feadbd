"""Gemini through google-genai, with the SDK's own retries switched off in favour of the engine's.

`GeminiBatchChat` sends chat requests as inline Gemini batch jobs (`batches.create` with the
requests inlined, `batches.get` until the job ends, answers in `dest.inlined_responses`), built
and read with the same request and response mapping as the online path.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import numpy as np
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from judgeforge.llm.backends import EmbeddingBatch, ResponseSink, run_chat_jobs, run_embedding_jobs
from judgeforge.llm.batch import ProviderBatchChat, batch_problem, poll_delays
from judgeforge.llm.cache import ResponseCache
from judgeforge.llm.engine import EngineSettings, PermanentError, RequestEngine, TransientError
from judgeforge.llm.errors import BatchFailed, ProviderError, ProviderUnreachable, run_refusal
from judgeforge.llm.openai_compatible import retry_after_seconds
from judgeforge.llm.secrets import Redactor
from judgeforge.llm.types import LLMRequest, LLMResponse

GEMINI_ENDPOINT = "generativelanguage.googleapis.com"
GEMINI_EMBEDDING_BATCH_SIZE = 100
# Requests in one inline batch job: Gemini caps an inline job's body at 20 MB, which a thousand
# generation prompts stay well under (bigger jobs would go through an uploaded JSONL file).
GEMINI_INLINE_BATCH_REQUESTS = 1_000
GEMINI_BATCH_SUCCEEDED = "JOB_STATE_SUCCEEDED"
_RETRY_DELAY = re.compile(r"^\s*([0-9.]+)s\s*$")
_DETAIL_CHARS = 300


def gemini_request(request: LLMRequest) -> tuple[list[types.Content], types.GenerateContentConfig]:
    """Contents and config for one request: system turns become the system instruction."""
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    contents = [
        types.Content(
            role="model" if m.role == "assistant" else "user", parts=[types.Part(text=m.content)]
        )
        for m in request.messages
        if m.role != "system"
    ]
    config = types.GenerateContentConfig(
        system_instruction=system or None,
        temperature=request.temperature,
        max_output_tokens=request.max_tokens,
        seed=request.seed,
        stop_sequences=list(request.stop) or None,
        candidate_count=1,
        response_mime_type="application/json" if request.json_schema is not None else None,
        response_json_schema=dict(request.json_schema) if request.json_schema is not None else None,
    )
    return contents, config


def parse_gemini_response(response: types.GenerateContentResponse) -> LLMResponse:
    """Text, tokens and finish reason; a blocked prompt is a permanent error."""
    candidates = response.candidates or []
    if not candidates:
        feedback = response.prompt_feedback
        reason = feedback.block_reason if feedback and feedback.block_reason else "no candidates"
        raise PermanentError(f"gemini returned no answer: {reason}")
    candidate = candidates[0]
    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
    text = "".join(part.text for part in parts if part.text and not part.thought)
    usage = response.usage_metadata
    finish = candidate.finish_reason
    return LLMResponse(
        text=text,
        input_tokens=(usage.prompt_token_count or 0) if usage else 0,
        # Thinking tokens are billed as output.
        output_tokens=((usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0))
        if usage
        else 0,
        finish_reason=finish.value.lower() if finish is not None else None,
    )


def gemini_error(error: genai_errors.APIError, where: str = "gemini") -> Exception:
    """The error an SDK APIError stands for: retryable, permanent, or ending the run."""
    detail = f"HTTP {error.code} {error.status}: {str(error.message)[:_DETAIL_CHARS]}"
    refusal = run_refusal(
        error.code,
        f"{error.status}: {str(error.message)[:_DETAIL_CHARS]}",
        where,
        bad_key="API_KEY_INVALID" in str(error.details),  # Gemini's 400 for a bad key
    )
    if refusal is not None:
        return refusal
    if error.code == 429 or error.code in (408, 409) or error.code >= 500:
        wait = _gemini_retry_after(error)
        # A 503 that names a wait is throttling; without one it is an outage, bounded by max_retries.
        throttled = error.code == 429 or (error.code == 503 and wait is not None)
        return TransientError(detail, retry_after=wait, throttled=throttled)
    return PermanentError(detail)


def _gemini_retry_after(error: genai_errors.APIError) -> float | None:
    """The wait the server asked for: a Retry-After header, else google.rpc.RetryInfo's retryDelay."""
    headers = getattr(error.response, "headers", None)
    if headers is not None:
        hinted = retry_after_seconds({k.lower(): v for k, v in headers.items()})
        if hinted is not None:
            return hinted
    details = error.details.get("error", error.details) if isinstance(error.details, dict) else {}
    for detail in details.get("details", []) if isinstance(details, dict) else []:
        match = (
            _RETRY_DELAY.match(str(detail.get("retryDelay", "")))
            if isinstance(detail, dict)
            else None
        )
        if match:
            return float(match.group(1))
    return None


def gemini_client(
    api_key: str, base_url: str | None, timeout_seconds: float, attempts: int = 1
) -> genai.Client:
    """An SDK client that tries each call `attempts` times (once by default: the engine retries)."""
    options = types.HttpOptions(
        base_url=base_url,
        timeout=int(timeout_seconds * 1000),
        retry_options=types.HttpRetryOptions(attempts=attempts),
    )
    return genai.Client(api_key=api_key, http_options=options)


class GeminiChat:
    """generate_content through the shared engine."""

    provider = "gemini"

    def __init__(
        self, model: str, api_key: str, engine: RequestEngine, base_url: str | None = None
    ):
        self.model = model
        self.endpoint = base_url or GEMINI_ENDPOINT
        self._api_key = api_key
        self._base_url = base_url
        self._engine = engine

    async def complete(
        self, requests: Sequence[LLMRequest], on_response: ResponseSink
    ) -> list[LLMResponse]:
        """Answer every request; failures come back as responses carrying their error."""
        client = gemini_client(
            self._api_key, self._base_url, self._engine.settings.request_timeout_seconds
        )
        async with client.aio as sdk:

            async def send(request: LLMRequest) -> LLMResponse:
                contents, config = gemini_request(request)
                response = await _call(
                    sdk.models.generate_content(model=self.model, contents=contents, config=config),
                    f"gemini at {self.endpoint}",
                )
                return parse_gemini_response(response)

            return await run_chat_jobs(self._engine, requests, send, on_response)


class GeminiBatchChat(ProviderBatchChat):
    """Chat requests as inline Gemini batch jobs, billed at Gemini's batch price."""

    max_requests = GEMINI_INLINE_BATCH_REQUESTS

    def __init__(
        self,
        model: str,
        api_key: str,
        settings: EngineSettings,
        redact: Redactor,
        ledger: ResponseCache | None,
        base_url: str | None = None,
    ) -> None:
        super().__init__("gemini", model, base_url or GEMINI_ENDPOINT, settings, redact, ledger)
        self._api_key = api_key
        self._base_url = base_url

    @asynccontextmanager
    async def _api(self) -> AsyncIterator[Any]:
        """An SDK client that retries its control calls itself (throughput is no concern here)."""
        client = gemini_client(
            self._api_key,
            self._base_url,
            self._settings.request_timeout_seconds,
            attempts=self._settings.max_retries + 1,
        )
        async with client.aio as sdk:
            yield sdk

    async def _create(self, api: Any, items: list[tuple[str, LLMRequest]]) -> str:
        """Create an inline batch job of `items`, each tagged with its key; return its name."""
        inlined = []
        for key, request in items:
            contents, config = gemini_request(request)
            inlined.append(
                types.InlinedRequest(
                    model=self.model, contents=contents, config=config, metadata={"key": key}
                )
            )
        async with self._calling("batches"):
            job = await api.batches.create(
                model=self.model,
                src=types.BatchJobSource(inlined_requests=inlined),
                config=types.CreateBatchJobConfig(display_name="judgeforge"),
            )
        if not job.name:
            raise BatchFailed(f"gemini at {self.endpoint} created a batch job without a name")
        return job.name

    async def _collect(
        self, api: Any, batch_id: str, keys: Sequence[str]
    ) -> tuple[dict[str, LLMResponse], str]:
        """Poll a job until it ends; its answers by key and, unless it succeeded, why not."""
        for delay in poll_delays(self._settings):
            async with self._calling("batches"):
                job = await api.batches.get(name=batch_id)
            if job.done:
                break
            await asyncio.sleep(delay)
        inlined = (job.dest.inlined_responses if job.dest else None) or []
        answers = {
            # responses come in request order; the key tag confirms which is which
            str((item.metadata or {}).get("key", key)): inline_answer(item)
            for key, item in zip(keys, inlined, strict=False)
        }
        state = job.state.name if job.state is not None else "JOB_STATE_UNSPECIFIED"
        if state == GEMINI_BATCH_SUCCEEDED:
            return answers, ""
        answered = sum(1 for answer in answers.values() if answer.ok)
        detail = f" ({job.error.message})" if job.error and job.error.message else ""
        status = state.removeprefix("JOB_STATE_").lower() + detail
        return answers, batch_problem(self.provider, batch_id, status, answered, len(keys))

    @asynccontextmanager
    async def _calling(self, resource: str) -> AsyncIterator[None]:
        """Turn the SDK's errors (after its own retries) into one line that ends the run."""
        where = f"gemini at {self.endpoint}/{resource}"
        try:
            yield
        except genai_errors.APIError as error:
            failure = gemini_error(error, where)
            if isinstance(failure, ProviderError):
                raise type(failure)(self._redact(str(failure))) from None
            raise BatchFailed(self._redact(f"{where}: {failure}")) from None
        except (aiohttp.ClientConnectorError, ConnectionError) as error:
            raise ProviderUnreachable(
                self._redact(
                    f"{where}: {error}; "
                    "check the provider's base_url and that the server is running"
                )
            ) from None


def inline_answer(item: types.InlinedResponse) -> LLMResponse:
    """One inlined response of a batch job, read as online answers are read, or its error."""
    if item.error is not None or item.response is None:
        error = item.error
        detail = f"{error.code}: {error.message}" if error else "no response"
        return LLMResponse(error=f"batch error {detail}", attempts=1)
    try:
        parsed = parse_gemini_response(item.response)
    except PermanentError as error:
        return LLMResponse(error=f"PermanentError: {error}", attempts=1)
    return LLMResponse(
        parsed.text, parsed.input_tokens, parsed.output_tokens, parsed.finish_reason, attempts=1
    )


class GeminiEmbeddings:
    """embed_content through the shared engine."""

    provider = "gemini"

    def __init__(
        self, model: str, api_key: str, engine: RequestEngine, base_url: str | None = None
    ):
        self.model = model
        self.endpoint = base_url or GEMINI_ENDPOINT
        self._api_key = api_key
        self._base_url = base_url
        self._engine = engine

    async def embed(self, texts: Sequence[str]) -> EmbeddingBatch:
        """Vectors for `texts`, in batches the API accepts."""
        client = gemini_client(
            self._api_key, self._base_url, self._engine.settings.request_timeout_seconds
        )
        async with client.aio as sdk:

            async def send(batch: Sequence[str]) -> EmbeddingBatch:
                response = await _call(
                    sdk.models.embed_content(model=self.model, contents=list(batch)),
                    f"gemini at {self.endpoint}",
                )
                vectors = [e.values or [] for e in response.embeddings or []]
                if len(vectors) != len(batch):
                    raise TransientError(
                        f"gemini returned {len(vectors)} embeddings for {len(batch)} texts"
                    )
                return EmbeddingBatch(vectors=np.asarray(vectors, dtype=np.float32))

            return await run_embedding_jobs(self._engine, texts, GEMINI_EMBEDDING_BATCH_SIZE, send)


async def _call(pending: Any, where: str) -> Any:
    """Await an SDK call, translating its failures into the engine's kinds."""
    try:
        return await pending
    except genai_errors.APIError as error:
        raise gemini_error(error, where) from error
    except asyncio.TimeoutError as error:
        raise TransientError("no answer within the request timeout") from error
    except (aiohttp.ClientConnectorError, ConnectionRefusedError) as error:
        raise TransientError(f"cannot connect to {where}: {error}", unreachable=True) from error
    except (aiohttp.ClientError, ConnectionError) as error:
        raise TransientError(f"connection problem: {type(error).__name__}: {error}") from error
