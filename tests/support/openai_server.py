"""A real OpenAI-compatible HTTP server on loopback, scriptable per request, for tests and benchmarks.

It answers `POST /v1/chat/completions`, `POST /v1/embeddings`, their Azure forms
(`/openai/deployments/{deployment}/...`, base_url = `server.root_url`) and Gemini's
`POST /v1beta/models/{model}:generateContent`, records every request, and counts the most
requests it ever held at once. It also runs OpenAI's Batch API: `POST /v1/files` (upload),
`GET /v1/files/{id}/content`, `POST /v1/batches`, `GET /v1/batches/{id}`, and Gemini's inline
batch jobs: `POST /v1beta/models/{model}:batchGenerateContent`, `GET /v1beta/batches/{id}`
(see "Batches" below).

In tests (the server runs in a background thread of the test process)::

    from tests.support.openai_server import OpenAIServer, Reply, openai_server  # fixture

    def test_something(openai_server):                  # or: with OpenAIServer() as server:
        openai_server.latency = 0.05                      # seconds added to every answer
        openai_server.enqueue(Reply.error(429, retry_after=0.1), Reply.text("hi"))
        openai_server.respond_with(lambda request: Reply.json({"label": "true"}))
        client = build_llm_client("openai", "test-model", base_url=openai_server.base_url)
        ...
        assert openai_server.max_in_flight <= 4
        assert openai_server.answered_twice() == []       # no request got two good answers

How an answer is chosen, for each request in arrival order:
1. the next reply queued with `enqueue(...)` (a canned sequence: 429 then 500 then OK ...);
2. else the provider-wide modes, which a gateway applies before any model answers:
   `refuse_status` answers every call with that error (401, 403, 404 model not found, 429
   insufficient_quota); `token_bucket(rate, capacity)` admits `rate` calls per second and
   answers the rest 429 at once with a Retry-After just above the refill time (and, with
   `headers=True`, OpenAI's `x-ratelimit-*-requests` headers on every answer);
3. else the responder set with `respond_with(fn)`: `fn(request: ReceivedRequest) -> Reply`,
   which can read `request.body` (the parsed JSON), `request.last_user_message`,
   `request.path`, and script wrong labels, duplicates, malformed JSON per prompt;
4. else the random faults (`rate_429`, `rate_500`, seeded by `seed`);
5. else `default_responder(request)` when set (it survives `reset()`; the standalone
   `--json-examples` sets it to `example_answers`), else the default: chat echoes
   `echo: <last user message>`, embeddings are a deterministic vector per text, Gemini
   echoes in its own payload format.

Replies: `Reply.text(content)`, `Reply.json(obj)` (content = JSON text), `Reply.error(status,
retry_after=..., code=...)`, `Reply.malformed()` (200 with a broken JSON body),
`Reply.slow(seconds, reply)`, `Reply.raw(status, body, headers)`, `Reply.disconnect()`.

An endpoint that refuses connections: `closed_port_url()` (a port nothing listens on).

Batches: a created batch is `validating`; each retrieve moves it on (`in_progress`, then
`finalizing`) and the `batch_polls`-th retrieve ends it with `batch_outcome` ("completed",
"failed", "expired" or "cancelled"). On ending, each line of its input file is answered the way
an online request would be (queue, responder, faults, default) and recorded in `requests` with
`batch_id` set; 200s go to the output file, the others to the error file. An expired or
cancelled batch answers its first half and lists the rest as errors (`batch_expired`); a failed
one answers nothing. `batch_hold = True` keeps every batch `in_progress` (a run to kill while it
waits). Files and batches are the provider's state: `reset()` keeps them. Gemini batch jobs
(`gemini_batches`, by name) go the same way: `BATCH_STATE_PENDING`, then `BATCH_STATE_RUNNING`,
ended as `BATCH_STATE_SUCCEEDED` / `_FAILED` / `_EXPIRED` / `_CANCELLED` with each inlined
request answered (recorded under its `:generateContent` path) into `inlinedResponses`, a
non-200 as the response's `error`.

`reset()` forgets queued replies, responder, records and counters. From another process use the
control endpoints: `GET /_control/stats` (requests, max_in_flight, answered_twice,
status_counts, batches_created, batch_requests, batch_api_calls), `POST /_control/reset` and
`POST /_control/batches` (JSON `{"hold": true, "outcome": "expired", "polls": 2}`). Standalone (benchmarks)::

    python -m tests.support.openai_server --latency 0.2 --rate-429 0.2 --retry-after 0.2
    python -m tests.support.openai_server --bucket-rate 300 --bucket-capacity 30
    python -m tests.support.openai_server --refuse-status 401
    # prints "READY http://127.0.0.1:<port>/v1" and serves until killed
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import random
import re
import socket
import sys
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from typing_extensions import Self


@dataclass(frozen=True)
class Reply:
    """One scripted answer: status, body, headers and extra delay."""

    status: int = 200
    body: bytes | Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    disconnect_instead: bool = False
    # Answered at once, without the server's latency (a gateway refusing before the model runs).
    at_once: bool = False

    @classmethod
    def text(cls, content: str, *, finish_reason: str = "stop", completion_tokens: int | None = None) -> Reply:
        """A chat completion whose message content is `content` (body filled in per request)."""
        return cls(body={"content": content, "finish_reason": finish_reason, "completion_tokens": completion_tokens})

    @classmethod
    def json(cls, value: Any) -> Reply:
        """A chat completion whose content is `value` serialised as JSON."""
        return cls.text(json.dumps(value))

    @classmethod
    def error(cls, status: int, message: str = "scripted error", *, retry_after: float | str | None = None,
              code: str | None = None, retry_after_ms: float | None = None) -> Reply:
        """An OpenAI-style error body, optionally with Retry-After / retry-after-ms headers."""
        headers: dict[str, str] = {}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        if retry_after_ms is not None:
            headers["retry-after-ms"] = str(retry_after_ms)
        body = {"error": {"message": message, "type": "scripted", "code": code}}
        return cls(status=status, body=json.dumps(body).encode(), headers=headers)

    @classmethod
    def malformed(cls) -> Reply:
        """A 200 whose body is not JSON."""
        return cls(status=200, body=b'{"choices": [{"message": ')

    @classmethod
    def raw(cls, status: int, body: bytes | Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Reply:
        """Exactly this status, body (bytes, or a dict sent as JSON as is) and headers."""
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        return cls(status=status, body=payload, headers=dict(headers or {}))

    @classmethod
    def slow(cls, seconds: float, reply: Reply | None = None) -> Reply:
        """`reply` (default: the default answer) after an extra `seconds`."""
        base = reply or cls()
        return cls(base.status, base.body, base.headers, base.delay + seconds, base.disconnect_instead, base.at_once)

    def _replace_at_once(self) -> Reply:
        return Reply(self.status, self.body, self.headers, self.delay, self.disconnect_instead, True)

    @classmethod
    def disconnect(cls) -> Reply:
        """Close the connection without answering."""
        return cls(disconnect_instead=True)


@dataclass(frozen=True)
class ReceivedRequest:
    """A request as the server saw it, with the status it was answered with."""

    path: str
    body: Any
    headers: Mapping[str, str]
    status: int
    # A 200 with a well-formed JSON body: the client got a usable answer.
    delivered: bool = False
    received_at: float = 0.0
    query: Mapping[str, str] = field(default_factory=dict)
    # the batch that carried this chat request (None: sent online)
    batch_id: str | None = None

    @property
    def last_user_message(self) -> str:
        """Content of the last user turn of a chat (or Gemini generateContent) request ('' when none)."""
        if isinstance(self.body, dict) and "contents" in self.body:
            return _gemini_text(self.body)
        messages = self.body.get("messages", []) if isinstance(self.body, dict) else []
        users = [m.get("content", "") for m in messages if m.get("role") == "user"]
        return users[-1] if users else ""

    @property
    def fingerprint(self) -> str:
        """Hash of path + canonical body: equal for two identical requests."""
        canonical = json.dumps(self.body, sort_keys=True) if not isinstance(self.body, str) else self.body
        return hashlib.sha256(f"{self.path}\n{canonical}".encode()).hexdigest()


Responder = Callable[[ReceivedRequest], Reply]
BATCH_API_PATHS = ("/v1/files", "/v1/batches", "/v1beta/batches")
GEMINI_BATCH_CREATE = ":batchGenerateContent"
GEMINI_BATCH_STATES = {"completed": "BATCH_STATE_SUCCEEDED", "failed": "BATCH_STATE_FAILED",
                       "expired": "BATCH_STATE_EXPIRED", "cancelled": "BATCH_STATE_CANCELLED"}

# What a provider says when it refuses every call, per status (OpenAI's wording and codes).
REFUSALS = {
    401: ("Incorrect API key provided: sk-te****cdef.", "invalid_api_key"),
    403: ("You are not allowed to use this model.", "model_not_allowed"),
    404: ("The model `{model}` does not exist or you do not have access to it.", "model_not_found"),
    429: ("You exceeded your current quota, please check your plan and billing details.",
          "insufficient_quota"),
}


def refusal(status: int, body: Any) -> Reply:
    """The error a provider answers every call with when it refuses the caller (401, 403, 404 ...)."""
    message, code = REFUSALS.get(status, ("refused (scripted)", None))
    model = body.get("model", "?") if isinstance(body, dict) else "?"
    return Reply.error(status, message.format(model=model), code=code)


class TokenBucket:
    """A provider's requests-per-minute limit: `rate` tokens per second, at most `capacity` banked."""

    def __init__(self, rate: float, capacity: float, retry_margin: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.retry_margin = retry_margin
        self.tokens = capacity
        self.updated = time.monotonic()
        self._lock = threading.Lock()

    def take(self, now: float) -> float | None:
        """Spend a token (None), or say how long until one is back (plus the margin)."""
        with self._lock:
            self._refill(now)
            if self.tokens >= 1:
                self.tokens -= 1
                return None
            return (1 - self.tokens) / self.rate + self.retry_margin

    def headers(self, now: float) -> dict[str, str]:
        """OpenAI's `x-ratelimit-*-requests` headers for the bucket as it is now."""
        with self._lock:
            self._refill(now)
            reset_ms = (self.capacity - self.tokens) / self.rate * 1000
            return {
                "x-ratelimit-limit-requests": str(int(self.capacity)),
                "x-ratelimit-remaining-requests": str(int(self.tokens)),
                "x-ratelimit-reset-requests": f"{reset_ms:.0f}ms",
            }

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = max(self.updated, now)


def example_answers(request: ReceivedRequest) -> Reply:
    """Answer a judgeforge generation call with one new example whose fields are read from the prompt."""
    prompt = request.last_user_message
    listed = prompt.split("Each example has these fields:")[1] if "Each example has these fields:" in prompt else ""
    fields = re.findall(r"^- (\w+): ", listed, flags=re.MULTILINE) or ["text"]
    number = next(_example_numbers)
    return Reply.json({"examples": [{field: f"Generated {field} number {number} for the test" for field in fields}]})


_example_numbers = itertools.count()


def closed_port_url() -> str:
    """An OpenAI-style base URL on a loopback port nothing listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


class OpenAIServer:
    """The server; start()/stop() or use it as a context manager."""

    def __init__(self, *, latency: float = 0.0, rate_429: float = 0.0, rate_500: float = 0.0,
                 retry_after: float | None = 0.05, seed: int = 0, host: str = "127.0.0.1",
                 port: int = 0, embedding_dim: int = 8, refuse_status: int | None = None) -> None:
        self.latency = latency
        self.refuse_status = refuse_status
        self._bucket: TokenBucket | None = None
        self.rate_limit_headers = False
        # Replaces the echo default; unlike respond_with, reset() keeps it (a standalone mode).
        self.default_responder: Responder | None = None
        self.rate_429 = rate_429
        self.rate_500 = rate_500
        self.retry_after = retry_after
        self.embedding_dim = embedding_dim
        self.host = host
        self.port = port
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._queue: deque[Reply] = deque()
        self._responder: Responder | None = None
        self.requests: list[ReceivedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        # the Batch API's state: uploaded files {id: (filename, purpose, content)}, batch objects
        self.files: dict[str, tuple[str, str, bytes]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        # Gemini batch jobs by name: {"name", "model", "requests" (the inlined ones), "state", "output"}
        self.gemini_batches: dict[str, dict[str, Any]] = {}
        self.batch_polls = 2
        self.batch_outcome = "completed"
        self.batch_hold = False
        self._batch_retrieves: Counter[str] = Counter()

    @property
    def root_url(self) -> str:
        """http://host:port (what google-genai takes as base_url)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """http://host:port/v1 (what an OpenAI client takes as base_url)."""
        return f"{self.root_url}/v1"

    def enqueue(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order."""
        with self._lock:
            self._queue.extend(replies)

    def respond_with(self, responder: Responder | None) -> None:
        """Answer requests (after the queue runs dry) with `responder(request)`."""
        self._responder = responder

    def token_bucket(self, rate: float, capacity: float, *, retry_margin: float = 0.005,
                     headers: bool = False) -> None:
        """Admit `rate` calls per second (bursts up to `capacity`); refuse the rest with 429 at once."""
        self._bucket = TokenBucket(rate, capacity, retry_margin)
        self.rate_limit_headers = headers

    def reset(self) -> None:
        """Forget queued replies, responder, records and counters."""
        with self._lock:
            self._queue.clear()
            self._responder = None
            self.requests = []
            self.max_in_flight = self.in_flight

    def answered_twice(self, path_suffix: str = "") -> list[str]:
        """Fingerprints of model requests (online or in a batch) that received a 200 more than once."""
        counts = Counter(r.fingerprint for r in self.requests if r.delivered and r.path.endswith(path_suffix)
                         and not _is_batch_api(r.path))
        return [fingerprint for fingerprint, count in counts.items() if count > 1]

    def stats(self) -> dict[str, Any]:
        """Counters, as the control endpoint reports them."""
        return {
            "requests": len(self.requests),
            "max_in_flight": self.max_in_flight,
            "answered_twice": len(self.answered_twice()),
            "delivered": sum(1 for r in self.requests if r.delivered),
            "status_counts": dict(Counter(r.status for r in self.requests)),
            "batches_created": len(self.batches) + len(self.gemini_batches),
            "batch_requests": sum(1 for r in self.requests if r.batch_id is not None),
            "batch_api_calls": sum(1 for r in self.requests if _is_batch_api(r.path)),
        }

    def start(self) -> OpenAIServer:
        """Serve in a background thread; returns once the port is bound."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(1024)
        self.port = listener.getsockname()[1]
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(listener, ready), daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self._loop and self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def app(self) -> web.Application:
        """The aiohttp application (also usable with aiohttp's own test tools)."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._handle)
        app.router.add_post("/v1/embeddings", self._handle)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._handle)
        app.router.add_post("/openai/deployments/{deployment}/embeddings", self._handle)
        app.router.add_post("/{version}/models/{model}:generateContent", self._handle)
        app.router.add_post("/v1/files", self._upload_file)
        app.router.add_get("/v1/files/{file_id}/content", self._file_content)
        app.router.add_post("/v1/batches", self._create_batch)
        app.router.add_get("/v1/batches/{batch_id}", self._retrieve_batch)
        app.router.add_post("/{version}/models/{model}:batchGenerateContent", self._create_gemini_batch)
        app.router.add_get("/{version}/batches/{batch_id}", self._get_gemini_batch)
        app.router.add_get("/_control/stats", self._stats)
        app.router.add_post("/_control/reset", self._reset)
        app.router.add_post("/_control/batches", self._control_batches)
        return app

    def _serve(self, listener: socket.socket, ready: threading.Event) -> None:
        """Thread body: run the app on its own event loop until stopped."""
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.SockSite(self._runner, listener).start())
        ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one API call the scripted way, and record it."""
        received_at = time.monotonic()
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            raw = await request.read()
            body = _parse(raw)
            headers = dict(request.headers)
            query = dict(request.query)
            reply = self._choose(ReceivedRequest(request.path, body, headers, 0, False, received_at))
            await asyncio.sleep(reply.delay + (0.0 if reply.at_once else self.latency))
            if reply.disconnect_instead:
                self._record(ReceivedRequest(request.path, body, headers, 0, False, received_at, query))
                if request.transport is not None:
                    request.transport.close()
                return web.Response(status=499)
            if isinstance(reply.body, bytes):
                payload = reply.body
                delivered = reply.status == 200 and not isinstance(_parse(payload), str)
            else:
                model = request.match_info.get("model", "")
                payload, delivered = self._body(request.path, body, reply, model), reply.status == 200
            self._record(
                ReceivedRequest(request.path, body, headers, reply.status, delivered, received_at, query)
            )
            headers_out = dict(reply.headers)
            if self.rate_limit_headers and self._bucket is not None:
                headers_out.update(self._bucket.headers(time.monotonic()))
            return web.Response(status=reply.status, body=payload, headers=headers_out,
                                content_type="application/json")
        finally:
            with self._lock:
                self.in_flight -= 1

    def _choose(self, received: ReceivedRequest) -> Reply:
        """The queued reply, else the responder's, else a random fault, else the default."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.refuse_status is not None:
            return refusal(self.refuse_status, received.body)
        if self._bucket is not None:
            wait = self._bucket.take(received.received_at)
            if wait is not None:
                return Reply.error(429, "Rate limit reached for requests (scripted bucket)",
                                   retry_after=round(wait, 4))._replace_at_once()
        if self._responder is not None:
            return self._responder(received)
        with self._lock:
            draw = self._random.random()
        if draw < self.rate_429:
            return Reply.error(429, "rate limited (scripted)", retry_after=self.retry_after)
        if draw < self.rate_429 + self.rate_500:
            return Reply.error(500, "server error (scripted)")
        return self.default_responder(received) if self.default_responder else Reply()

    def _record(self, received: ReceivedRequest) -> None:
        with self._lock:
            self.requests.append(received)

    def _body(self, path: str, body: Any, reply: Reply, model: str = "") -> bytes:
        """The JSON body of a successful answer in the format the path speaks."""
        spec = dict(reply.body or {})
        received = ReceivedRequest(path, body, {}, 200)
        if path.endswith("/embeddings"):
            return json.dumps(self._embeddings(body)).encode()
        content = spec.get("content")
        if content is None:
            content = f"echo: {received.last_user_message or _gemini_text(body)}"
        if path.endswith(":generateContent"):
            return json.dumps(gemini_payload(content, model)).encode()
        return json.dumps(chat_completion(content, body, spec.get("finish_reason") or "stop",
                                          spec.get("completion_tokens"))).encode()

    def _embeddings(self, body: Any) -> dict[str, Any]:
        """Deterministic, unnormalised vectors per input text."""
        texts = body.get("input", []) if isinstance(body, dict) else []
        texts = [texts] if isinstance(texts, str) else texts
        data = [{"object": "embedding", "index": i, "embedding": _vector(t, self.embedding_dim)}
                for i, t in enumerate(texts)]
        tokens = sum(len(str(t).split()) for t in texts)
        return {"object": "list", "data": data, "model": body.get("model", "test"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    async def _upload_file(self, request: web.Request) -> web.Response:
        """`POST /v1/files`: keep the uploaded file (multipart `file` and `purpose`)."""
        if self.refuse_status is not None:
            return self._refuse_control(request)
        form = await request.post()
        upload, purpose = form["file"], str(form.get("purpose", ""))
        content = upload.file.read() if isinstance(upload, web.FileField) else str(upload).encode()
        filename = upload.filename if isinstance(upload, web.FileField) else "upload"
        file_id = self._record_control(request, {"purpose": purpose, "bytes": len(content)}, "file")
        with self._lock:
            self.files[file_id] = (filename, purpose, content)
        return web.json_response(_file_object(file_id, filename, purpose, content))

    async def _file_content(self, request: web.Request) -> web.Response:
        """`GET /v1/files/{id}/content`: the file's bytes."""
        file_id = request.match_info["file_id"]
        self._record_control(request, None)
        if file_id not in self.files:
            return _not_found(f"No such File object: {file_id}")
        return web.Response(body=self.files[file_id][2], content_type="application/octet-stream")

    async def _create_batch(self, request: web.Request) -> web.Response:
        """`POST /v1/batches`: a batch of the lines of an uploaded file, `validating`."""
        if self.refuse_status is not None:
            return self._refuse_control(request)
        body = _parse(await request.read())
        input_file_id = body.get("input_file_id") if isinstance(body, dict) else None
        if input_file_id not in self.files:
            self._record_control(request, body)
            return _not_found(f"No such File object: {input_file_id}")
        batch_id = self._record_control(request, body, "batch")
        lines = self.files[input_file_id][2].decode().splitlines()
        batch = {
            "id": batch_id, "object": "batch", "endpoint": body.get("endpoint"),
            "input_file_id": input_file_id, "completion_window": body.get("completion_window"),
            "status": "validating", "created_at": int(time.time()), "output_file_id": None,
            "error_file_id": None, "errors": None, "metadata": body.get("metadata"),
            "request_counts": {"total": sum(1 for line in lines if line.strip()), "completed": 0,
                               "failed": 0},
        }
        with self._lock:
            self.batches[batch_id] = batch
        return web.json_response(batch)

    async def _retrieve_batch(self, request: web.Request) -> web.Response:
        """`GET /v1/batches/{id}`: the batch, moved one step on (ended at the `batch_polls`-th retrieve)."""
        batch_id = request.match_info["batch_id"]
        if f"batches/{batch_id}" in self.gemini_batches:  # google-genai asks at this path too (api v1)
            return await self._get_gemini_batch(request)
        self._record_control(request, None)
        batch = self.batches.get(batch_id)
        if batch is None:
            return _not_found(f"No such Batch object: {batch_id}")
        if batch["status"] in ("validating", "in_progress", "finalizing") and not self.batch_hold:
            self._batch_retrieves[batch_id] += 1
            if self._batch_retrieves[batch_id] >= self.batch_polls:
                self._end_batch(batch)
            else:
                batch["status"] = "in_progress" if batch["status"] == "validating" else "finalizing"
        elif batch["status"] == "validating":
            batch["status"] = "in_progress"
        return web.json_response(batch)

    def _end_batch(self, batch: dict[str, Any]) -> None:
        """Answer the batch's lines (all, half, or none by `batch_outcome`) into its output and error files."""
        outcome = self.batch_outcome
        lines = [json.loads(line) for line in self.files[batch["input_file_id"]][2].decode().splitlines()
                 if line.strip()]
        answered = {"completed": len(lines), "failed": 0}.get(outcome, len(lines) // 2)
        outputs, errors = [], []
        for number, line in enumerate(lines):
            if number >= answered:
                if outcome != "failed":
                    errors.append({"id": f"batch_req_{number}", "custom_id": line["custom_id"],
                                   "response": None, "error": {"code": f"batch_{outcome}",
                                   "message": f"This request could not be executed before the batch was {outcome}."}})
                continue
            outputs_or_errors, entry = self._answer_line(batch["id"], number, line)
            (outputs if outputs_or_errors else errors).append(entry)
        batch["status"] = outcome
        batch["request_counts"] = {"total": len(lines), "completed": len(outputs), "failed": len(errors)}
        if outcome == "failed":
            batch["errors"] = {"object": "list", "data": [{"code": "invalid_request", "line": None,
                                                           "param": None, "message": "scripted batch failure"}]}
        for key, entries in (("output_file_id", outputs), ("error_file_id", errors)):
            if entries:
                content = "".join(json.dumps(entry) + "\n" for entry in entries).encode()
                file_id = f"file-{uuid.uuid4().hex[:24]}"
                with self._lock:
                    self.files[file_id] = (f"{batch['id']}_{key}.jsonl", "batch_output", content)
                batch[key] = file_id

    def _answer_line(self, batch_id: str, number: int, line: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """Answer one input line as an online request would be; (answered 200, its output line)."""
        path, body = line.get("url", ""), line.get("body")
        reply = self._choose(ReceivedRequest(path, body, {}, 0, False, time.monotonic()))
        if isinstance(reply.body, bytes):
            parsed = _parse(reply.body)
            delivered = reply.status == 200 and not isinstance(parsed, str)
        else:
            parsed, delivered = json.loads(self._body(path, body, reply)), reply.status == 200
        self._record(ReceivedRequest(path, body, {}, reply.status, delivered, time.monotonic(),
                                     batch_id=batch_id))
        entry = {"id": f"batch_req_{number}", "custom_id": line["custom_id"],
                 "response": {"status_code": reply.status, "request_id": f"req_{number}", "body": parsed},
                 "error": None}
        return reply.status == 200, entry

    async def _create_gemini_batch(self, request: web.Request) -> web.Response:
        """`POST .../models/{model}:batchGenerateContent`: a Gemini batch job of inlined requests, pending."""
        if self.refuse_status is not None:
            return self._refuse_control(request)
        body = _parse(await request.read())
        inlined = (((body.get("batch") or {}).get("inputConfig") or {}).get("requests") or {}).get("requests") \
            if isinstance(body, dict) else None
        if not isinstance(inlined, list):
            self._record_control(request, body)
            return _gemini_status(400, "INVALID_ARGUMENT", "batch.inputConfig.requests.requests is required")
        name = "batches/" + self._record_control(request, body, "gemini")
        job = {"name": name, "model": request.match_info["model"], "version": request.match_info["version"],
               "display_name": body["batch"].get("displayName"), "requests": inlined,
               "state": "BATCH_STATE_PENDING", "output": None}
        with self._lock:
            self.gemini_batches[name] = job
        return web.json_response(_gemini_operation(job))

    async def _get_gemini_batch(self, request: web.Request) -> web.Response:
        """`GET .../batches/{id}`: the job, moved one step on (ended at the `batch_polls`-th get)."""
        name = f"batches/{request.match_info['batch_id']}"
        self._record_control(request, None)
        job = self.gemini_batches.get(name)
        if job is None:
            return _gemini_status(404, "NOT_FOUND", f"Batch {name} not found.")
        if job["state"] in ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING") and not self.batch_hold:
            self._batch_retrieves[name] += 1
            if self._batch_retrieves[name] >= self.batch_polls:
                self._end_gemini_batch(job)
            else:
                job["state"] = "BATCH_STATE_RUNNING"
        elif job["state"] == "BATCH_STATE_PENDING":
            job["state"] = "BATCH_STATE_RUNNING"
        return web.json_response(_gemini_operation(job))

    def _end_gemini_batch(self, job: dict[str, Any]) -> None:
        """Answer the job's inlined requests (all, half, or none by `batch_outcome`) into its output."""
        outcome = self.batch_outcome
        inlined = job["requests"]
        answered = {"completed": len(inlined), "failed": 0}.get(outcome, len(inlined) // 2)
        path = f"/{job['version']}/models/{job['model']}:generateContent"
        responses = []
        for item in inlined[:answered]:
            body = {k: v for k, v in item.get("request", {}).items() if k != "model"}
            reply = self._choose(ReceivedRequest(path, body, {}, 0, False, time.monotonic()))
            if isinstance(reply.body, bytes):
                parsed = _parse(reply.body)
                delivered = reply.status == 200 and not isinstance(parsed, str)
            else:
                parsed, delivered = json.loads(self._body(path, body, reply, job["model"])), reply.status == 200
            self._record(ReceivedRequest(path, body, {}, reply.status, delivered, time.monotonic(),
                                         batch_id=job["name"]))
            entry: dict[str, Any] = {"metadata": item.get("metadata")}
            if reply.status == 200:
                entry["response"] = parsed
            else:
                error = parsed.get("error", {}) if isinstance(parsed, dict) else {}
                entry["error"] = {"code": reply.status, "message": error.get("message", str(parsed))}
            responses.append(entry)
        job["state"] = GEMINI_BATCH_STATES[outcome]
        if outcome != "failed":
            job["output"] = {"inlinedResponses": {"inlinedResponses": responses}}

    def _refuse_control(self, request: web.Request) -> web.Response:
        """A Batch API call refused as `refuse_status` refuses every call (a bad key refuses uploads too)."""
        reply = refusal(self.refuse_status or 401, {})
        self._record(ReceivedRequest(request.path, None, dict(request.headers), reply.status, False, time.monotonic()))
        return web.Response(status=reply.status, body=reply.body, content_type="application/json")

    def _record_control(self, request: web.Request, body: Any, prefix: str | None = None) -> str:
        """Record a Batch API call; return a new object id with `prefix` (when one is made)."""
        self._record(ReceivedRequest(request.path, body, dict(request.headers), 200, True, time.monotonic()))
        return f"{prefix}-{uuid.uuid4().hex[:24]}" if prefix else ""

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _control_batches(self, request: web.Request) -> web.Response:
        """Set `batch_hold` / `batch_outcome` / `batch_polls` from another process (JSON body)."""
        settings = await request.json()
        for name in ("hold", "outcome", "polls"):
            if name in settings:
                setattr(self, f"batch_{name}", settings[name])
        return web.json_response({"hold": self.batch_hold, "outcome": self.batch_outcome})

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})


def chat_completion(content: str, request_body: Any, finish_reason: str = "stop",
                    completion_tokens: int | None = None) -> dict[str, Any]:
    """A chat.completion body as OpenAI sends it."""
    messages = request_body.get("messages", []) if isinstance(request_body, dict) else []
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
    completion = completion_tokens if completion_tokens is not None else len(content.split())
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": request_body.get("model", "test") if isinstance(request_body, dict) else "test",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None},
                     "logprobs": None, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                  "total_tokens": prompt_tokens + completion},
    }


def gemini_payload(text: str, model: str) -> dict[str, Any]:
    """A generateContent body as the Gemini API sends it."""
    return {
        "candidates": [{"content": {"parts": [{"text": text}], "role": "model"},
                        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": len(text.split()),
                          "totalTokenCount": 7 + len(text.split())},
        "modelVersion": model,
        "responseId": "test-response",
    }


def _file_object(file_id: str, filename: str, purpose: str, content: bytes) -> dict[str, Any]:
    """A file object as OpenAI's /v1/files sends it."""
    return {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
            "filename": filename, "purpose": purpose, "status": "processed"}


def _gemini_operation(job: Mapping[str, Any]) -> dict[str, Any]:
    """A Gemini batch job as the API sends it: an operation whose metadata is the GenerateContentBatch."""
    metadata: dict[str, Any] = {
        "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
        "name": job["name"], "model": f"models/{job['model']}", "displayName": job["display_name"],
        "state": job["state"],
    }
    if job["output"] is not None:
        metadata["output"] = job["output"]
    ended = job["state"] not in ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING")
    return {"name": job["name"], "metadata": metadata, "done": ended}


def _gemini_status(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": status, "message": message, "status": code}}, status=status)


def _is_batch_api(path: str) -> bool:
    """Whether `path` is a batch control call (files, batches), not a model request."""
    return path.startswith(BATCH_API_PATHS) or path.endswith(GEMINI_BATCH_CREATE)


def _not_found(message: str) -> web.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
    return web.json_response(body, status=404)


def _gemini_text(body: Any) -> str:
    """Text of the last user turn of a generateContent body."""
    contents = body.get("contents", []) if isinstance(body, dict) else []
    parts = contents[-1].get("parts", []) if contents else []
    return "".join(p.get("text", "") for p in parts)


def _vector(text: str, dim: int) -> list[float]:
    digest = hashlib.sha256(str(text).encode()).digest()
    return [(digest[i % len(digest)] - 127.5) / 10 for i in range(dim)]


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    """A fresh server on a free loopback port, stopped after the test."""
    with OpenAIServer() as server:
        yield server


def main(argv: list[str] | None = None) -> None:
    """Serve standalone until killed (benchmarks start it in its own process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--rate-429", type=float, default=0.0)
    parser.add_argument("--rate-500", type=float, default=0.0)
    parser.add_argument("--retry-after", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--refuse-status", type=int, default=None, help="answer every call with it")
    parser.add_argument("--bucket-rate", type=float, default=None, help="admitted calls per second")
    parser.add_argument("--bucket-capacity", type=float, default=None, help="default: rate / 10")
    parser.add_argument("--bucket-margin", type=float, default=0.005, help="Retry-After margin, s")
    parser.add_argument("--rate-headers", action="store_true", help="send x-ratelimit-* headers")
    parser.add_argument("--json-examples", action="store_true", help="answer generation calls with new examples")
    args = parser.parse_args(argv)
    server = OpenAIServer(latency=args.latency, rate_429=args.rate_429, rate_500=args.rate_500,
                          retry_after=args.retry_after, seed=args.seed, port=args.port,
                          refuse_status=args.refuse_status)
    if args.bucket_rate:
        server.token_bucket(args.bucket_rate, args.bucket_capacity or max(1.0, args.bucket_rate / 10),
                            retry_margin=args.bucket_margin, headers=args.rate_headers)
    if args.json_examples:
        server.default_responder = example_answers
    server.start()
    print(f"READY {server.base_url}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
