"""Failures that end a run at once: a refused key, permission or model, an endpoint nobody answers."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from judgeforge.llm import LLMRequest, build_llm_client
from judgeforge.llm.backends import EmbeddingError
from judgeforge.llm.errors import DeliveryShortfall, ProviderRejected, ProviderUnreachable
from tests.llm.conftest import TEST_KEY
from tests.support.openai_server import Reply, closed_port_url


def ask(count: int, tag: str = "p") -> list[LLMRequest]:
    return [LLMRequest.from_prompt(f"{tag} {i}") for i in range(count)]


@pytest.mark.parametrize(
    ("status", "fix"),
    [(401, "API key was refused"), (403, "permission denied"), (404, "unknown model or wrong URL")],
)
def test_a_refused_run_stops_at_the_first_answer_with_one_line(server, make_client, status, fix):
    server.refuse_status = status
    client = make_client(max_concurrent_requests=4)
    with pytest.raises(ProviderRejected) as refused:
        asyncio.run(client.generate(ask(50)))
    message = str(refused.value)
    assert len(server.requests) <= 4  # those already in flight, nothing after the first answer
    assert f"openai at {server.base_url}/chat/completions answered HTTP {status}" in message
    assert fix in message and "\n" not in message and TEST_KEY not in message
    assert client.usage.retries == 0


def test_answers_before_a_refusal_stay_cached_and_the_rerun_sends_only_the_rest(
    server, make_client
):
    server.respond_with(
        lambda r: Reply.error(401, "key revoked") if r.last_user_message == "p 5" else Reply()
    )
    with pytest.raises(ProviderRejected):
        asyncio.run(make_client(max_concurrent_requests=1).generate(ask(10)))
    assert [r.status for r in server.requests] == [200] * 5 + [401]

    server.reset()
    responses = asyncio.run(make_client().generate(ask(10)))
    assert all(r.ok for r in responses)
    assert sum(r.from_cache for r in responses) == 5
    assert sorted(r.last_user_message for r in server.requests) == [f"p {i}" for i in range(5, 10)]


def test_answers_already_sent_when_a_refusal_arrives_are_stored_not_lost(server, make_client):
    # 4 requests go out together; "p 0" is refused at once while the 3 others are still being
    # answered: the provider bills those 3, so the run waits for them and caches their answers
    server.respond_with(
        lambda r: (
            Reply.error(401, "key revoked") if r.last_user_message == "p 0" else Reply.slow(0.5)
        )
    )
    with pytest.raises(ProviderRejected):
        asyncio.run(make_client(max_concurrent_requests=4).generate(ask(10)))
    delivered = sorted(r.last_user_message for r in server.requests if r.delivered)
    assert delivered == ["p 1", "p 2", "p 3"]

    server.reset()
    responses = asyncio.run(make_client().generate(ask(10)))
    assert [r.from_cache for r in responses] == [False] + [True] * 3 + [False] * 6
    assert sorted(r.last_user_message for r in server.requests) == ["p 0"] + [
        f"p {i}" for i in range(4, 10)
    ]


def test_an_endpoint_refusing_connections_stops_the_run_after_a_short_streak(cache_path):
    client = build_llm_client(
        "openai",
        "m",
        base_url=closed_port_url(),
        api_key=TEST_KEY,
        cache_path=cache_path,
        max_concurrent_requests=2,
        max_connection_failures=3,
        backoff_base_seconds=0.01,
        show_progress=False,
    )
    with pytest.raises(
        ProviderUnreachable, match="3 connection attempts in a row failed"
    ) as unreachable:
        asyncio.run(client.generate(ask(20)))
    assert "cannot connect to http://127.0.0.1:" in str(unreachable.value)
    assert client.usage.retries <= 3
    client.close()


def test_exhausted_quota_names_its_fix(server, make_client):
    server.refuse_status = 429  # insufficient_quota
    with pytest.raises(ProviderRejected, match="no quota or credit left"):
        asyncio.run(make_client(max_concurrent_requests=1).generate(ask(3)))
    assert len(server.requests) == 1


def test_embeddings_that_fail_keep_the_batches_that_worked(server, make_client):
    texts = [f"text {i}" for i in range(200)]  # two batches of the embeddings endpoint
    server.respond_with(
        lambda r: Reply.error(400, "bad input") if "text 150" in r.body["input"] else Reply()
    )
    client = make_client(max_concurrent_requests=1)
    with pytest.raises(EmbeddingError, match="1 of 2 embedding calls failed") as failed:
        asyncio.run(client.embed(texts))
    assert isinstance(failed.value, DeliveryShortfall)

    server.reset()
    vectors = asyncio.run(make_client().embed(texts))
    assert vectors.shape == (200, 8) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    [again] = server.requests
    assert again.body["input"] == texts[128:]
