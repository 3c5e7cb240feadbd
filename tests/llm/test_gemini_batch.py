"""Gemini batch jobs on the loopback server: the online mapping, half the price, the cache, resume."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from judgeforge.llm import LLMRequest, ResponseCache, build_llm_client
from judgeforge.llm.errors import BatchFailed
from judgeforge.llm.providers import GEMINI_BATCH_PRICE_FACTOR
from tests.support.openai_server import OpenAIServer, Reply

KEY = "gm-test-key-123456"
MODEL = "gemini-2.5-flash"
GENERATE = f"/models/{MODEL}:generateContent"
SCHEMA = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}


def gemini_client(server: OpenAIServer, cache_path: Path, *, batch: bool):
    return build_llm_client(
        "gemini",
        MODEL,
        api_key=KEY,
        base_url=server.root_url,
        cache_path=cache_path,
        batch=batch,
        backoff_base_seconds=0.01,
        max_retries=1,
        show_progress=False,
    )


def canonical(body: dict) -> str:
    return json.dumps(body, sort_keys=True)


def requests(count: int) -> list[LLMRequest]:
    return [
        LLMRequest.from_prompt(f"question {i}", system="you answer", json_schema=SCHEMA, seed=i)
        for i in range(count)
    ]


def test_a_batch_job_answers_as_online_does_at_half_the_price(server, tmp_path):
    online = gemini_client(server, tmp_path / "online.sqlite", batch=False)
    batched = gemini_client(server, tmp_path / "batch.sqlite", batch=True)
    asked = requests(4)

    expected = online.generate_sync(asked)
    online_bodies = [r.body for r in server.requests]
    server.reset()
    answers = batched.generate_sync(asked)

    assert [a.text for a in answers] == [e.text for e in expected]
    assert batched.usage.succeeded == 4
    assert batched.usage.input_tokens == online.usage.input_tokens > 0
    assert batched.usage.cost_usd == pytest.approx(
        online.usage.cost_usd * GEMINI_BATCH_PRICE_FACTOR, rel=1e-12
    )
    (job,) = server.gemini_batches.values()
    answered = [r for r in server.requests if r.path.endswith(GENERATE)]
    # no online call: every generateContent went inside the one job, built as online builds it
    assert [r.batch_id for r in answered] == [job["name"]] * 4
    # online calls arrive in any order; the job keeps request order
    assert sorted(map(canonical, (r.body for r in answered))) == sorted(
        map(canonical, online_bodies)
    )
    assert answered[0].body["systemInstruction"]["parts"][0]["text"] == "you answer"
    assert answered[0].body["generationConfig"]["responseMimeType"] == "application/json"
    assert server.stats()["batches_created"] == 1
    # cached under the online keys: an online client on this cache pays nothing
    server.reset()
    reader = gemini_client(server, tmp_path / "batch.sqlite", batch=False)
    assert all(a.from_cache for a in reader.generate_sync(asked))
    assert server.requests == []
    for client in (online, batched, reader):
        client.close()


def test_a_killed_run_resumes_the_submitted_job_instead_of_paying_twice(server, cache_path):
    server.batch_hold = True
    asked = requests(3)
    first = gemini_client(server, cache_path, batch=True)

    async def kill_while_polling() -> None:
        task = asyncio.create_task(first.generate(asked))
        while not any("/batches/" in r.path for r in server.requests):
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(kill_while_polling())
    first.close()
    (name,) = server.gemini_batches
    ledger = ResponseCache(cache_path)
    assert list(ledger.open_batches("gemini", MODEL, server.root_url)) == [name]
    ledger.close()

    server.batch_hold = False
    rerun = gemini_client(server, cache_path, batch=True)
    answers = rerun.generate_sync(asked)
    assert [a.text for a in answers] == [f"echo: question {i}" for i in range(3)]
    assert list(server.gemini_batches) == [name]  # no second job
    assert len([r for r in server.requests if r.path.endswith(GENERATE)]) == 3
    assert server.answered_twice() == []
    ledger = ResponseCache(cache_path)
    assert ledger.open_batches("gemini", MODEL, server.root_url) == {}
    ledger.close()
    rerun.close()


def test_an_expired_job_caches_what_it_answered_and_says_so_in_one_line(server, cache_path):
    server.batch_outcome = "expired"
    client = gemini_client(server, cache_path, batch=True)
    with pytest.raises(BatchFailed) as raised:
        client.generate_sync(requests(4))
    (name,) = server.gemini_batches
    message = str(raised.value)
    assert message == (
        f"gemini batch {name} expired: 2 of 4 requests answered and cached; "
        "rerun to submit the rest as a new batch"
    )
    assert KEY not in message
    server.batch_outcome = "completed"
    rerun = gemini_client(server, cache_path, batch=True)
    answers = rerun.generate_sync(requests(4))
    assert [a.from_cache for a in answers] == [True, True, False, False]
    assert [len(job["requests"]) for job in server.gemini_batches.values()] == [4, 2]
    client.close()
    rerun.close()


def test_a_request_the_job_could_not_answer_comes_back_as_a_failed_response(server, cache_path):
    server.enqueue(Reply.error(400, "bad request body"), Reply.text("fine"))
    client = gemini_client(server, cache_path, batch=True)
    first, second = client.generate_sync(requests(2))
    assert first.error == "batch error 400: bad request body" and second.text == "fine"
    assert client.usage.failed == 1 and client.usage.succeeded == 1
    client.close()
