"""Rate limits held: pacing by a known, announced or learned rate, shared pauses, a time budget."""

from __future__ import annotations

import asyncio
from itertools import pairwise

import pytest

from judgeforge.llm import LLMRequest
from judgeforge.llm.pacing import RECENT_OUTCOMES, RateGovernor, duration_seconds
from tests.support.openai_server import Reply


def ask(count: int, tag: str = "p") -> list[LLMRequest]:
    return [LLMRequest.from_prompt(f"{tag} {i}") for i in range(count)]


def test_a_token_bucket_is_held_everything_delivered_with_fewer_429s_than_requests(
    server, make_client
):
    server.latency = 0.02
    server.token_bucket(rate=50, capacity=5)
    client = make_client(max_concurrent_requests=32)
    responses = asyncio.run(client.generate(ask(150)))
    assert all(r.ok for r in responses)
    statuses = [r.status for r in server.requests]
    assert statuses.count(200) == 150 and statuses.count(429) < 150
    assert server.answered_twice() == []
    governor = client.chat._engine.governor
    assert governor.learned_rate is not None and governor.pauses > 0


def test_scattered_429s_are_waited_out_by_the_request_alone(server, make_client):
    server.latency = 0.01
    server.rate_429, server.retry_after = 0.2, 0.05
    client = make_client(max_concurrent_requests=16)
    responses = asyncio.run(client.generate(ask(200)))
    assert all(r.ok for r in responses)
    governor = client.chat._engine.governor
    assert governor.learned_rate is None and governor.pauses == 0  # not taken for a rate limit
    assert client.usage.throttled > 0


def test_a_configured_requests_per_minute_spaces_request_starts(server, make_client):
    client = make_client(max_concurrent_requests=8, requests_per_minute=600)  # one per 0.1 s
    asyncio.run(client.generate(ask(6)))
    arrivals = sorted(r.received_at for r in server.requests)
    assert arrivals[-1] - arrivals[0] >= 0.45  # 5 intervals of 0.1 s, less the catch-up allowed
    assert all(later - earlier >= 0.05 for earlier, later in pairwise(arrivals))


def test_a_configured_tokens_per_minute_paces_by_estimated_tokens(server, make_client):
    client = make_client(max_concurrent_requests=8, tokens_per_minute=6000)  # 100 tokens/s
    requests = [LLMRequest.from_prompt(f"q {i}", max_tokens=20) for i in range(4)]  # 20 tokens each
    asyncio.run(client.generate(requests))
    arrivals = sorted(r.received_at for r in server.requests)
    assert arrivals[-1] - arrivals[0] >= 0.55  # 3 intervals of 0.2 s, less the catch-up allowed
    assert all(later - earlier >= 0.1 for earlier, later in pairwise(arrivals))


def test_the_rate_announced_in_headers_is_learned(server, make_client):
    server.latency = 0.01
    server.token_bucket(rate=40, capacity=10, headers=True)
    client = make_client(max_concurrent_requests=4)
    responses = asyncio.run(client.generate(ask(60)))
    assert all(r.ok for r in responses)
    announced = client.chat._engine.governor.announced_rate
    assert announced is not None and 20 <= announced <= 80


def test_throttling_is_retried_within_a_time_budget_not_max_retries(server, make_client):
    server.enqueue(*[Reply.error(429, retry_after=0.01)] * 5)
    [response] = asyncio.run(make_client(max_retries=1).generate(ask(1)))
    assert response.ok and response.attempts == 6

    server.reset()
    server.respond_with(lambda r: Reply.error(429, retry_after=0.1))
    [given_up] = asyncio.run(make_client(retry_budget_seconds=0.35).generate(ask(1, "late")))
    assert not given_up.ok and "HTTP 429" in given_up.error
    assert 2 <= given_up.attempts <= 4


def test_other_failures_still_count_against_max_retries(server, make_client):
    server.respond_with(lambda r: Reply.error(500))
    [response] = asyncio.run(make_client(max_retries=2, retry_budget_seconds=60).generate(ask(1)))
    assert not response.ok and response.attempts == 3


def test_sustained_throttling_holds_every_request_scattered_does_not():
    governor = RateGovernor()
    for index in range(RECENT_OUTCOMES):
        governor.on_success(index * 0.01) if index % 5 else governor.on_throttled(index * 0.01, 1.0)
    assert governor.pauses == 0 and governor.rate is None
    for index in range(RECENT_OUTCOMES):
        governor.on_throttled(1.0 + index * 0.001, 0.5)
    assert governor.pauses > 0 and governor.learned_rate is not None


def test_pacing_releases_waiting_requests_at_the_rate_and_learns_a_faster_one_at_once():
    async def scenario() -> tuple[int, int]:
        governor = RateGovernor(requests_per_second=2.0)
        starts = [asyncio.ensure_future(governor.admit()) for _ in range(20)]
        await asyncio.sleep(0.3)
        slow = sum(task.done() for task in starts)  # one at once, the next after 0.5 s
        governor.configured_rate = 1000.0
        await asyncio.sleep(0.2)
        return slow, sum(task.done() for task in starts)

    assert asyncio.run(scenario()) == (1, 20)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1", 1.0), ("0.5", 0.5), ("20ms", 0.02), ("1s", 1.0), ("6m0s", 360.0), ("1h2m3.5s", 3723.5)],
)
def test_openai_reset_durations(text, seconds):
    assert duration_seconds(text) == pytest.approx(seconds)


def test_a_bad_duration_is_refused():
    with pytest.raises(ValueError):
        duration_seconds("soon")


def test_announced_limits_pace_only_near_exhaustion():
    governor = RateGovernor()
    governor.on_rate_headers(
        {
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-remaining-requests": "9999",
            "x-ratelimit-reset-requests": "1s",
        }
    )
    assert governor.rate is None  # a coarse reset far from the limit would claim 1 request/s
    governor.on_rate_headers(
        {
            "x-ratelimit-limit-requests": "100",
            "x-ratelimit-remaining-requests": "4",
            "x-ratelimit-reset-requests": "2s",
        }
    )
    assert governor.rate == pytest.approx(48.0)
