"""Every retry and back-off path of the request engine, against a real loopback server."""

from __future__ import annotations

import asyncio

import pytest

from judgeforge.llm import LLMRequest
from judgeforge.llm.errors import ProviderRejected
from tests.support.openai_server import Reply


def ask(*prompts: str) -> list[LLMRequest]:
    return [LLMRequest.from_prompt(p) for p in prompts]


def test_429_is_retried_after_the_retry_after_it_names(server, make_client):
    server.enqueue(Reply.error(429, retry_after=0.4))
    client = make_client(max_concurrent_requests=1)
    [response] = asyncio.run(client.generate(ask("hello")))
    assert response.ok and response.text == "echo: hello" and response.attempts == 2
    first, second = server.requests
    assert (first.status, second.status) == (429, 200)
    assert second.received_at - first.received_at >= 0.4
    assert client.usage.retries == 1 and client.usage.throttled == 1


def test_retry_after_ms_header_is_honoured(server, make_client):
    server.enqueue(Reply.error(429, retry_after_ms=300))
    [response] = asyncio.run(make_client().generate(ask("hi")))
    assert response.ok
    assert server.requests[1].received_at - server.requests[0].received_at >= 0.3


@pytest.mark.parametrize(
    "fault",
    [Reply.error(500), Reply.error(502), Reply.error(503), Reply.malformed(), Reply.disconnect(),
     Reply.raw(200, {"unexpected": "shape"})],
    ids=["500", "502", "503", "malformed-json", "disconnect", "wrong-shape"],
)
def test_transient_faults_are_retried_until_an_answer(server, make_client, fault):
    server.enqueue(fault, fault)
    [response] = asyncio.run(make_client().generate(ask("x")))
    assert response.ok and response.text == "echo: x" and response.attempts == 3
    assert len(server.requests) == 3


def test_a_slow_answer_times_out_and_is_retried(server, make_client):
    server.enqueue(Reply.slow(2.0))
    [response] = asyncio.run(make_client(request_timeout_seconds=0.3).generate(ask("slow")))
    assert response.ok and response.attempts == 2


@pytest.mark.parametrize("status", [400, 422])
def test_client_errors_are_not_retried(server, make_client, status):
    server.enqueue(Reply.error(status, "bad thing"))
    [response] = asyncio.run(make_client().generate(ask("q")))
    assert not response.ok and f"HTTP {status}: bad thing" in response.error
    assert len(server.requests) == 1


def test_exhausted_quota_is_not_retried_and_ends_the_run(server, make_client):
    server.enqueue(Reply.error(429, "out of credit", code="insufficient_quota", retry_after=0))
    with pytest.raises(ProviderRejected, match="no quota or credit left"):
        asyncio.run(make_client(max_concurrent_requests=1).generate(ask("q", "r")))
    assert len(server.requests) == 1


def test_a_request_failing_every_retry_does_not_abort_the_batch(server, make_client):
    server.respond_with(lambda r: Reply.error(500) if r.last_user_message == "doomed" else Reply())
    client = make_client(max_retries=2)
    responses = asyncio.run(client.generate(ask("a", "doomed", "b")))
    assert [r.ok for r in responses] == [True, False, True]
    assert responses[1].attempts == 3 and "HTTP 500" in responses[1].error
    assert client.usage.failed == 1 and client.usage.succeeded == 2


def test_failed_requests_are_not_cached_and_are_retried_on_rerun(server, make_client):
    server.enqueue(*[Reply.error(500)] * 4)
    first = asyncio.run(make_client(max_retries=3).generate(ask("later")))
    assert not first[0].ok
    again = asyncio.run(make_client().generate(ask("later")))
    assert again[0].ok and not again[0].from_cache


def test_concurrency_bound_is_never_exceeded(server, make_client):
    server.latency = 0.05
    client = make_client(max_concurrent_requests=5)
    responses = asyncio.run(client.generate(ask(*[f"p{i}" for i in range(60)])))
    assert all(r.ok for r in responses)
    assert server.max_in_flight == 5
    assert client.chat._engine.peak_in_flight == 5


def test_concurrency_bound_holds_while_retrying_throttled_requests(server, make_client):
    server.latency = 0.02
    server.rate_429, server.retry_after = 0.3, 0.05
    responses = asyncio.run(make_client(max_concurrent_requests=3, max_retries=10).generate(ask(*[f"p{i}" for i in range(40)])))
    assert all(r.ok for r in responses)
    assert server.max_in_flight <= 3
    assert server.answered_twice() == []
