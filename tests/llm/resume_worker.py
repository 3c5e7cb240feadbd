"""Subprocess body of the kill test: generate N prompts against a server, caching as it goes."""

from __future__ import annotations

import asyncio
import sys

from judgeforge.llm import LLMRequest, build_llm_client


def prompts(count: int) -> list[LLMRequest]:
    """The workload both the killed run and the re-run ask for."""
    return [LLMRequest.from_prompt(f"example {i}", seed=i) for i in range(count)]


def main(base_url: str, cache_path: str, count: int) -> None:
    """Run the whole workload once."""
    client = build_llm_client(
        "openai", "test-model", base_url=base_url, api_key="sk-worker-key",
        cache_path=cache_path, max_concurrent_requests=4, show_progress=False,
    )
    asyncio.run(client.generate(prompts(count)))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
