"""A run killed with SIGKILL mid-way loses only its in-flight requests; the re-run sends the rest."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from judgeforge.llm import ResponseCache, build_llm_client
from tests.llm.resume_worker import prompts
from tests.support.commands import kill_once

COUNT = 40
CONCURRENCY = 4


def test_cache_survives_a_killed_process(server, cache_path):
    server.latency = 0.1
    worker = [
        sys.executable,
        str(Path(__file__).with_name("resume_worker.py")),
        server.base_url,
        str(cache_path),
        str(COUNT),
    ]
    kill_once(
        worker, Path.cwd(), lambda: sum(r.delivered for r in server.requests) >= 12, seconds=60
    )
    deadline = time.monotonic() + 60
    while server.in_flight and time.monotonic() < deadline:  # answers to a dead client still land
        time.sleep(0.01)
    delivered_before_kill = sum(r.delivered for r in server.requests)
    assert 12 <= delivered_before_kill < COUNT

    cache = ResponseCache(cache_path)
    cached = cache.count_responses()
    cache.close()
    assert delivered_before_kill - CONCURRENCY <= cached <= delivered_before_kill

    server.reset()
    client = build_llm_client(
        "openai",
        "test-model",
        base_url=server.base_url,
        api_key="sk-worker-key",
        cache_path=cache_path,
        show_progress=False,
    )
    responses = asyncio.run(client.generate(prompts(COUNT)))
    assert all(r.ok for r in responses)
    assert sum(r.from_cache for r in responses) == cached
    assert len(server.requests) == COUNT - cached
    assert server.answered_twice() == []
    assert client.cache.count_responses() == COUNT
    client.close()
