"""Run N one-example chat calls through bespokelabs-curator against an OpenAI-compatible URL.

Runs in curator's own virtual environment (it is not a judgeforge dependency):
    /tmp/curator-venv/bin/python benchmarks/curator_worker.py BASE_URL CALLS CONCURRENCY
Prints one JSON line: calls, seconds, answers.
"""

import json
import os
import sys
import tempfile
import time

os.environ.update({"TELEMETRY_ENABLED": "false", "CURATOR_DISABLE_CACHE": "true", "CURATOR_DISABLE_RICH_DISPLAY": "1"})
os.environ.setdefault("OPENAI_API_KEY", "sk-benchmark")

import tiktoken


class WhitespaceEncoding:
    """Stands in for tiktoken's cl100k_base, which curator downloads at run time (no network here).

    Curator counts tokens only to pace itself against its token-per-minute limits, which this
    benchmark sets far above what the server can serve, so an approximate count changes nothing.
    """

    name = "whitespace"

    def encode(self, text: str, **_: object) -> list[str]:
        return text.split()


tiktoken.get_encoding = lambda name: WhitespaceEncoding()
tiktoken.encoding_for_model = lambda name: WhitespaceEncoding()

from bespokelabs import curator


def main() -> None:
    base_url, calls, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    os.environ["CURATOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="curator-")
    llm = curator.LLM(
        model_name="gpt-4o-mini",
        backend="openai",
        generation_params={"max_tokens": 64},
        backend_params={
            "base_url": base_url,
            "api_key": "sk-benchmark",
            "max_concurrent_requests": concurrency,
            # rate limits far above what the loopback server can serve, so concurrency decides
            "max_requests_per_minute": 10_000_000,
            "max_tokens_per_minute": 10_000_000_000,
            "max_retries": 20,
        },
    )
    prompts = [f"curator example {i}" for i in range(calls)]
    started = time.perf_counter()
    answers = llm(prompts)
    seconds = time.perf_counter() - started
    print(json.dumps({"calls": calls, "seconds": seconds, "answers": len(answers.dataset)}))


if __name__ == "__main__":
    main()
