"""The batch backend on the loopback Batch API: same answers and cache as online, half the price, clear endings."""

from __future__ import annotations

import json

import pytest

from judgeforge.llm import LLMConfigError, LLMRequest, ResponseCache, build_llm_client
from judgeforge.llm.asking import InvalidAnswer, ask_until_valid
from judgeforge.llm.errors import BatchFailed, ProviderRejected
from judgeforge.llm.providers import OPENAI_BATCH_PRICE_FACTOR
from tests.llm.conftest import TEST_KEY
from tests.support.openai_server import Reply

CHAT = "/v1/chat/completions"


def requests(count: int) -> list[LLMRequest]:
    return [LLMRequest.from_prompt(f"question {i}") for i in range(count)]


def test_batch_answers_match_online_and_cost_the_batch_price(server, make_client, tmp_path):
    online = make_client(model="gpt-4o-mini", cache_path=tmp_path / "online.sqlite")
    batched = make_client(model="gpt-4o-mini", batch=True)
    asked = requests(5)

    expected = online.generate_sync(asked)
    server.reset()
    answers = batched.generate_sync(asked)

    assert [a.text for a in answers] == [e.text for e in expected]
    assert batched.usage.succeeded == 5 and batched.usage.input_tokens == online.usage.input_tokens
    assert batched.usage.cost_usd == pytest.approx(
        online.usage.cost_usd * OPENAI_BATCH_PRICE_FACTOR, rel=1e-12
    )
    paths = [r.path for r in server.requests]
    assert paths.count("/v1/files") == 1 and paths.count("/v1/batches") == 1
    assert [r.batch_id is not None for r in server.requests if r.path == CHAT] == [True] * 5
    # answers land in the cache under the online keys: an online client on that cache pays nothing
    server.reset()
    assert all(a.from_cache for a in batched.generate_sync(asked))
    assert all(a.from_cache for a in make_client(model="gpt-4o-mini").generate_sync(asked))
    assert server.requests == []


def test_validation_retries_go_out_as_a_second_batch_of_only_the_retries(server, make_client):
    client = make_client(batch=True)

    def answer(request) -> Reply:
        first_ask = "(Attempt 2" not in request.last_user_message
        odd = request.last_user_message.split("question ")[1][0] in "13579"
        return Reply.json({"value": "bad" if first_ask and odd else "good"})

    server.respond_with(answer)

    def read(index: int, text: str) -> str:
        value = json.loads(text)["value"]
        if value != "good":
            raise InvalidAnswer("value must be good")
        return value

    outcomes = ask_until_valid(
        client,
        6,
        lambda i, attempt, problem: LLMRequest.from_prompt(
            f"question {i}" + (f" (Attempt {attempt}: {problem})" if attempt > 1 else "")
        ),
        read,
        retries=2,
    )
    assert [o.value for o in outcomes] == ["good"] * 6
    assert [o.attempts for o in outcomes] == [1, 2, 1, 2, 1, 2]
    sizes = [batch["request_counts"]["total"] for batch in server.batches.values()]
    assert sizes == [6, 3]


def test_a_failed_batch_is_one_line_and_closes_its_ledger_entry(server, make_client, cache_path):
    server.batch_outcome = "failed"
    client = make_client(batch=True)
    with pytest.raises(BatchFailed) as raised:
        client.generate_sync(requests(2))
    (batch_id,) = server.batches
    message = str(raised.value)
    assert message.startswith(f"openai batch {batch_id} failed (scripted batch failure): 0 of 2")
    assert "\n" not in message and TEST_KEY not in message
    assert (
        ResponseCache(cache_path).open_batches(
            "openai", "test-model", server.base_url + "/chat/completions"
        )
        == {}
    )


def test_per_request_errors_come_back_as_failed_responses(server, make_client):
    server.enqueue(Reply.error(400, "bad request body"), Reply.text("fine"))
    client = make_client(batch=True)
    first, second = client.generate_sync(requests(2))
    assert first.error == "HTTP 400: bad request body" and second.text == "fine"
    assert client.usage.failed == 1 and client.usage.succeeded == 1


def test_a_refused_key_stops_at_the_upload_with_the_online_wording(server, make_client):
    server.refuse_status = 401
    client = make_client(batch=True, api_key="sk-wrong-0123456789")
    with pytest.raises(ProviderRejected, match="answered HTTP 401: Incorrect API key provided"):
        client.generate_sync(requests(1))
    assert server.batches == {}


@pytest.mark.parametrize(
    ("provider", "extra"),
    [
        (
            "azure",
            {"api_key": TEST_KEY, "base_url": "https://r.openai.azure.com", "deployment": "d"},
        ),
        ("vegas", {"api_key": TEST_KEY, "base_url": "https://vegas.example.com/v1", "model": "m"}),
        ("local", {}),
    ],
)
def test_providers_without_a_batch_api_here_are_refused_before_any_request(
    provider, extra, cache_path
):
    with pytest.raises(
        LLMConfigError, match=f"async_config.batch: provider '{provider}' has no batch API"
    ):
        build_llm_client(provider, batch=True, cache_path=cache_path, **extra)
