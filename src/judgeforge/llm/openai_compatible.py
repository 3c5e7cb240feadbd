"""OpenAI, Azure OpenAI, vegas and any OpenAI-compatible server, over a thin aiohttp client.

The engine owns retries, timeouts and concurrency, so the SDK's own copies of those are pure
overhead: measured on this machine at concurrency 256 the openai SDK reaches 0.04 (httpx) or
0.52 (its aiohttp transport) of the ideal throughput, a thin aiohttp client 0.90. The wire
format is small and stable: chat/completions and embeddings request and response bodies.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
import numpy as np

from judgeforge.llm.backends import (
    EmbeddingBatch,
    ResponseSink,
    run_chat_jobs,
    run_embedding_jobs,
)
from judgeforge.llm.engine import PermanentError, RequestEngine, TransientError
from judgeforge.llm.errors import run_refusal
from judgeforge.llm.types import LLMRequest, LLMResponse

OPENAI_BASE_URL = "https://api.openai.com/v1"
EMBEDDING_BATCH_SIZE = 128
_ERROR_DETAIL_CHARS = 300
# Present when a provider announces its request limit (OpenAI, Azure, many gateways).
RATE_LIMIT_HEADER = "x-ratelimit-limit-requests"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where chat and embedding calls go and how they authenticate."""

    chat_url: str
    embeddings_url: str
    headers: Mapping[str, str] = field(repr=False)
    # Official OpenAI/Azure want max_completion_tokens; servers that mimic them know max_tokens.
    max_tokens_field: str = "max_tokens"
    # Azure routes by deployment in the URL, and ignores the body's model.
    send_model: bool = True


def openai_endpoint(base_url: str | None, api_key: str | None) -> Endpoint:
    """OpenAI itself (no base_url) or any server speaking its protocol at `base_url`."""
    root = (base_url or OPENAI_BASE_URL).rstrip("/")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    official = base_url is None or root == OPENAI_BASE_URL
    return Endpoint(
        chat_url=f"{root}/chat/completions",
        embeddings_url=f"{root}/embeddings",
        headers=headers,
        max_tokens_field="max_completion_tokens" if official else "max_tokens",
    )


def azure_endpoint(
    resource_url: str, deployment: str, embedding_deployment: str, api_version: str, api_key: str
) -> Endpoint:
    """An Azure OpenAI resource, addressed by deployment and api-version."""
    root = resource_url.rstrip("/")
    query = urlencode({"api-version": api_version})
    return Endpoint(
        chat_url=f"{root}/openai/deployments/{deployment}/chat/completions?{query}",
        embeddings_url=f"{root}/openai/deployments/{embedding_deployment}/embeddings?{query}",
        headers={"api-key": api_key},
        max_tokens_field="max_completion_tokens",
        send_model=False,
    )


def chat_payload(model: str, request: LLMRequest, endpoint: Endpoint) -> dict[str, Any]:
    """The chat/completions body for one request."""
    body: dict[str, Any] = {
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "temperature": request.temperature,
        endpoint.max_tokens_field: request.max_tokens,
    }
    if endpoint.send_model:
        body["model"] = model
    if request.seed is not None:
        body["seed"] = request.seed
    if request.stop:
        body["stop"] = list(request.stop)
    if request.json_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "name": request.schema_name,
                "schema": strict_json_schema(request.json_schema),
                "strict": True,
            },
        }
    return body


def strict_json_schema(schema: Any) -> Any:
    """The schema as OpenAI's strict mode wants it: closed objects whose properties are all required."""
    if isinstance(schema, Mapping):
        tightened = {key: strict_json_schema(value) for key, value in schema.items()}
        if tightened.get("type") == "object" and "properties" in tightened:
            tightened["additionalProperties"] = False
            tightened["required"] = list(tightened["properties"])
        return tightened
    if isinstance(schema, list):
        return [strict_json_schema(item) for item in schema]
    return schema


def parse_chat_completion(body: Any) -> LLMResponse:
    """Text, tokens and finish reason of a chat/completions body."""
    try:
        choice = body["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError) as error:
        raise TransientError("malformed chat completion: no choices[0].message") from error
    if message.get("refusal"):
        raise PermanentError(f"the model refused: {str(message['refusal'])[:_ERROR_DETAIL_CHARS]}")
    usage = body.get("usage") or {}
    return LLMResponse(
        text=message.get("content") or "",
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        finish_reason=choice.get("finish_reason"),
    )


def parse_embeddings(body: Any, expected: int) -> EmbeddingBatch:
    """Vectors (in input order) and token count of an embeddings body."""
    try:
        rows = sorted(body["data"], key=lambda row: row["index"])
        vectors = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
    except (KeyError, TypeError, ValueError) as error:
        raise TransientError("malformed embeddings response: no data[].embedding") from error
    if len(rows) != expected:
        raise TransientError(f"embeddings response has {len(rows)} vectors for {expected} texts")
    usage = body.get("usage") or {}
    return EmbeddingBatch(vectors=vectors, input_tokens=int(usage.get("prompt_tokens") or 0))


def http_error(
    status: int, headers: Mapping[str, str], body: bytes, where: str = "the provider"
) -> Exception:
    """The error a non-200 answer stands for: retryable, permanent, or ending the run."""
    detail, code = _error_detail(body)
    refusal = run_refusal(status, detail, where, no_quota=code == "insufficient_quota")
    if refusal is not None:
        return refusal
    message = f"HTTP {status}: {detail}"
    wait = retry_after_seconds(headers)
    if status == 429:
        return TransientError(message, retry_after=wait, throttled=True)
    if status in (408, 409) or status >= 500:
        # A 503 that names a wait is throttling; without one it is an outage, bounded by max_retries.
        return TransientError(message, retry_after=wait, throttled=status == 503 and wait is not None)
    return PermanentError(message)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked us to wait (`retry-after-ms`, or `Retry-After` seconds or date)."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if _looks_like_date(value) else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _looks_like_date(value: str) -> bool:
    """Whether a Retry-After value could be an HTTP date (parsedate_to_datetime raises otherwise)."""
    return email.utils.parsedate(value) is not None


def _error_detail(body: bytes) -> tuple[str, str | None]:
    """The error message and code of an OpenAI-style error body, else the start of the body."""
    try:
        error = json.loads(body)["error"]
        return str(error.get("message"))[:_ERROR_DETAIL_CHARS], error.get("code")
    except (ValueError, KeyError, TypeError, AttributeError):
        return body[:_ERROR_DETAIL_CHARS].decode("utf-8", "replace"), None


class OpenAICompatibleChat:
    """Chat completions over aiohttp, through the shared engine."""

    def __init__(self, provider: str, model: str, endpoint: Endpoint, engine: RequestEngine):
        self.provider = provider
        self.model = model
        self.endpoint = endpoint.chat_url
        self._target = endpoint
        self._engine = engine

    async def complete(
        self, requests: Sequence[LLMRequest], on_response: ResponseSink
    ) -> list[LLMResponse]:
        """Answer every request; failures come back as responses carrying their error."""
        async with _post_json(self.provider, self._engine, self._target) as post:

            async def send(request: LLMRequest) -> LLMResponse:
                body = chat_payload(self.model, request, self._target)
                return parse_chat_completion(await post(self._target.chat_url, body))

            return await run_chat_jobs(self._engine, requests, send, on_response)


class OpenAICompatibleEmbeddings:
    """The /embeddings endpoint over aiohttp, through the shared engine."""

    def __init__(self, provider: str, model: str, endpoint: Endpoint, engine: RequestEngine):
        self.provider = provider
        self.model = model
        self.endpoint = endpoint.embeddings_url
        self._target = endpoint
        self._engine = engine

    async def embed(self, texts: Sequence[str]) -> EmbeddingBatch:
        """Vectors for `texts`, in batches of EMBEDDING_BATCH_SIZE."""
        async with _post_json(self.provider, self._engine, self._target) as post:

            async def send(batch: Sequence[str]) -> EmbeddingBatch:
                body: dict[str, Any] = {"input": list(batch), "encoding_format": "float"}
                if self._target.send_model:
                    body["model"] = self.model
                return parse_embeddings(await post(self._target.embeddings_url, body), len(batch))

            return await run_embedding_jobs(self._engine, texts, EMBEDDING_BATCH_SIZE, send)


@asynccontextmanager
async def _post_json(
    provider: str, engine: RequestEngine, endpoint: Endpoint
) -> AsyncIterator[Callable[[str, dict[str, Any]], Awaitable[Any]]]:
    """A JSON POST function over one aiohttp session that lives as long as one batch.

    A session per batch, not per client, because callers may run each batch under a fresh
    event loop (asyncio.run in a Kedro node) and a session cannot outlive its loop.
    """
    connector = aiohttp.TCPConnector(limit=engine.settings.max_concurrent_requests, ttl_dns_cache=300)
    timeout = aiohttp.ClientTimeout(total=engine.settings.request_timeout_seconds)
    headers = {**endpoint.headers, "Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as session:

        async def post(url: str, body: dict[str, Any]) -> Any:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            try:
                async with session.post(url, data=data) as response:
                    raw = await response.read()
                    status, response_headers = response.status, response.headers
            except asyncio.TimeoutError as error:
                raise TransientError(f"no answer within {timeout.total:g} s") from error
            except aiohttp.ClientConnectorError as error:
                raise TransientError(
                    f"cannot connect to {url}: {type(error).__name__}: {error}", unreachable=True
                ) from error
            except aiohttp.ClientError as error:
                raise TransientError(f"connection problem: {type(error).__name__}: {error}") from error
            if RATE_LIMIT_HEADER in response_headers:
                engine.note_rate_headers(response_headers)
            if status != 200:
                raise http_error(status, response_headers, raw, f"{provider} at {url}")
            try:
                return json.loads(raw)
            except ValueError as error:
                raise TransientError(f"malformed JSON body: {raw[:80]!r}") from error

        yield post
