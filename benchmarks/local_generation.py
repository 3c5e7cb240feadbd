"""Embedded SmolLM2 throughput on this CPU: single stream vs batches, and valid-JSON rate (not a test).

tokens/s counts generated tokens up to and including each row's end-of-turn (padding after a
row has finished is not counted). The llama.cpp reference on the same GGUF file is
`benchmarks/llama_cpp_reference.py`, run in its own process.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/local_generation.py [--max-tokens 64] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch

from judgeforge.llm import LLMRequest, LLMResponse
from judgeforge.llm.local import LocalChat

TOPICS = ["headphones", "a coffee maker", "running shoes", "a novel", "a hotel stay", "a phone",
          "a pizza place", "a laptop", "a museum", "a bike", "a tent", "a movie", "a blender",
          "a bus ride", "a keyboard", "a gym"]
REVIEW_SCHEMA = {
    "type": "object",
    "properties": {"text": {"type": "string"}, "label": {"enum": ["positive", "negative"]}},
    "required": ["text", "label"],
}


def prompts(count: int, max_tokens: int) -> list[LLMRequest]:
    """Short, varied generation prompts."""
    return [LLMRequest.from_prompt(f"Write two sentences about {TOPICS[i % len(TOPICS)]} (#{i}).",
                                   max_tokens=max_tokens) for i in range(count)]


def json_prompts(count: int) -> list[LLMRequest]:
    """The structured prompt of the valid-JSON measurement, sampled with distinct seeds."""
    return [
        LLMRequest.from_prompt(
            f"Write a one-sentence {('positive', 'negative')[i % 2]} review of {TOPICS[i % len(TOPICS)]}.",
            system="You write short product reviews.", json_schema=REVIEW_SCHEMA,
            temperature=0.7, max_tokens=96, seed=i,
        )
        for i in range(count)
    ]


def parsed_object(response: LLMResponse) -> dict | None:
    """The answer as a JSON object, or None."""
    try:
        value = json.loads(response.text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def is_valid_review(value: dict | None) -> bool:
    """Whether a parsed answer has a non-empty text and a known label."""
    return (value is not None and isinstance(value.get("text"), str) and bool(value["text"])
            and value.get("label") in ("positive", "negative"))


def tokens_per_second(
    generate: Callable[[list[LLMRequest]], list[LLMResponse]], requests: list[LLMRequest]
) -> float:
    """Generated tokens per wall-clock second of one run."""
    started = time.perf_counter()
    responses = generate(requests)
    return sum(r.output_tokens for r in responses) / (time.perf_counter() - started)


def one_at_a_time(chat: LocalChat) -> Callable[[list[LLMRequest]], list[LLMResponse]]:
    """Generation of each request alone (single stream)."""
    return lambda requests: [chat.generate_batch([request])[0] for request in requests]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json-samples", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: torch's default); on a CPU shared with other "
                             "busy processes 1 thread avoids OpenMP oversubscription")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}", flush=True)
    chat = LocalChat(batch_size=32)
    chat.generate_batch(prompts(1, 4))  # load once, outside the timings

    single = [tokens_per_second(one_at_a_time(chat), prompts(4, args.max_tokens)) for _ in range(args.repeats)]
    print(f"transformers single stream: {statistics.median(single):.1f} tokens/s "
          f"(median of {[round(x, 1) for x in single]})", flush=True)
    for batch in (8, 16, 32):
        runs = [tokens_per_second(chat.generate_batch, prompts(batch, args.max_tokens))
                for _ in range(args.repeats)]
        print(f"transformers batch {batch:>2}: {statistics.median(runs):.1f} tokens/s "
              f"(median of {[round(x, 1) for x in runs]})", flush=True)

    started = time.perf_counter()
    answers = [a for start in range(0, args.json_samples, 16)
               for a in chat.generate_batch(json_prompts(args.json_samples)[start:start + 16])]
    objects = [parsed_object(a) for a in answers]
    parsed = sum(o is not None for o in objects)
    valid = sum(is_valid_review(o) for o in objects)
    print(f"structured prompt, {len(answers)} samples: valid JSON object {parsed / len(answers):.2f}, "
          f"schema-valid (text + known label) {valid / len(answers):.2f} "
          f"({len(answers) / (time.perf_counter() - started):.2f} examples/s, batches of 16)", flush=True)



if __name__ == "__main__":
    main()
