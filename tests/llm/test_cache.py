"""The content-addressed response cache: re-runs re-send nothing, changes re-send only what changed."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from judgeforge.llm import LLMRequest, ResponseCache, request_key
from tests.support.openai_server import Reply


def ask(*prompts: str, **params) -> list[LLMRequest]:
    return [LLMRequest.from_prompt(p, **params) for p in prompts]


def test_rerun_is_served_from_cache_and_sends_nothing(server, make_client):
    prompts = [f"prompt {i}" for i in range(20)]
    first = asyncio.run(make_client().generate(ask(*prompts)))
    assert len(server.requests) == 20 and not any(r.from_cache for r in first)

    client = make_client()
    again = asyncio.run(client.generate(ask(*prompts)))
    assert len(server.requests) == 20
    assert all(r.from_cache for r in again)
    assert [r.text for r in again] == [r.text for r in first]
    assert client.usage.cache_hits == 20 and client.usage.requests == 0


def test_changed_prompt_or_parameter_resends_only_what_changed(server, make_client):
    asyncio.run(make_client().generate(ask("a", "b", "c")))
    server.reset()
    changed = [*ask("a", "B"), LLMRequest.from_prompt("c", temperature=0.7)]
    responses = asyncio.run(make_client().generate(changed))
    assert [r.from_cache for r in responses] == [True, False, False]
    sent = sorted(r.last_user_message for r in server.requests)
    assert sent == ["B", "c"]


def test_every_request_field_is_part_of_the_key():
    base = LLMRequest.from_prompt("p", system="s", temperature=0.5, max_tokens=10, seed=1)
    variants = [
        LLMRequest.from_prompt("p", system="s2", temperature=0.5, max_tokens=10, seed=1),
        LLMRequest.from_prompt("p", system="s", temperature=0.6, max_tokens=10, seed=1),
        LLMRequest.from_prompt("p", system="s", temperature=0.5, max_tokens=11, seed=1),
        LLMRequest.from_prompt("p", system="s", temperature=0.5, max_tokens=10, seed=2),
        LLMRequest.from_prompt("p", system="s", temperature=0.5, max_tokens=10, seed=1,
                               json_schema={"type": "object"}),
    ]
    key = request_key("openai", "m", "url", base.canonical())
    assert key == request_key("openai", "m", "url", LLMRequest.from_prompt(
        "p", system="s", temperature=0.5, max_tokens=10, seed=1).canonical())
    keys = {request_key("openai", "m", "url", v.canonical()) for v in variants}
    assert key not in keys and len(keys) == len(variants)
    assert key != request_key("openai", "other-model", "url", base.canonical())
    assert key != request_key("azure", "m", "url", base.canonical())


def test_duplicates_in_one_batch_are_sent_once(server, make_client):
    responses = asyncio.run(make_client().generate(ask("same", "same", "other", "same")))
    assert [r.text for r in responses] == ["echo: same", "echo: same", "echo: other", "echo: same"]
    assert len(server.requests) == 2


def test_cache_rows_survive_reopening(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = ResponseCache(path)
    cache.put_responses("openai", "m", {"k1": {"text": "t", "input_tokens": 1, "output_tokens": 2,
                                               "finish_reason": "stop"}})
    cache.put_embeddings("local", "e", {"k2": np.array([0.6, 0.8], dtype=np.float32)})
    cache.close()
    reopened = ResponseCache(path)
    assert reopened.get_responses(["k1", "missing"])["k1"]["text"] == "t"
    np.testing.assert_allclose(reopened.get_embeddings(["k2"])["k2"], [0.6, 0.8])
    assert reopened.count_responses() == 1
    reopened.close()


def test_embeddings_are_normalised_and_cached(server, make_client):
    client = make_client(embedding_model="text-embedding-3-small")
    vectors = asyncio.run(client.embed(["alpha", "beta", "alpha"]))
    assert vectors.shape == (3, 8) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    assert len(server.requests) == 1 and server.requests[0].body["input"] == ["alpha", "beta"]

    again = asyncio.run(make_client(embedding_model="text-embedding-3-small").embed(["beta", "gamma"]))
    np.testing.assert_array_equal(again[0], vectors[1])
    assert server.requests[-1].body["input"] == ["gamma"]


def test_usage_counts_tokens_and_cost_from_the_price_table(server, make_client):
    server.respond_with(lambda r: Reply.text("one two three four"))
    client = make_client(prices={"test-model": {"input": 1.0, "output": 2.0}})
    asyncio.run(client.generate(ask("a b", "c d e")))
    usage = client.usage
    assert (usage.requests, usage.succeeded, usage.input_tokens, usage.output_tokens) == (2, 2, 5, 8)
    assert usage.cost_usd == pytest.approx((5 * 1.0 + 8 * 2.0) / 1e6)
    assert usage.priced and usage.wall_time_s > 0


def test_a_model_without_price_is_flagged_unpriced(server, make_client):
    client = make_client()
    asyncio.run(client.generate(ask("x")))
    assert client.usage.cost_usd == 0 and not client.usage.priced
