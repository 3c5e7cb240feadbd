"""Engine throughput on the embedded SmolLM2: llama.cpp (its GGUF) beside transformers float32 and int8.

The same shapes for every engine: `--seqs` prompts of `--prompt` random tokens prefilled
together, then `--new` greedy decoding steps of all sequences at once (what continuous
batching does in its steady state). Reports prompt and generated tokens per CPU-second of the
process (one thread), which a loaded machine does not distort the way it does wall time.
Each engine runs in its own process (llama.cpp crashed when loaded next to torch).

llama.cpp comes from the `llama-cpp-py-sync` wheel (prebuilt libllama.so, CFFI ABI bindings).
That wheel needs glibc 2.38 (it calls the C23 `__isoc23_strtol` family) while Debian 12 has 2.36,
so it loads here only after `bash benchmarks/llama_cpp_py_sync_glibc236.sh DIR` (BENCHMARKS.md):

    python benchmarks/llama_cpp_engine.py --llama-cpp-path DIR [--seqs 16 --prompt 256 --new 48]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ENGINES = ("transformers-float32", "transformers-int8", "llama.cpp")


def run_llama_cpp(seqs: int, prompt: int, new: int) -> dict:
    """Prefill `seqs` prompts as separate sequences of one context, then decode them together."""
    import random

    import numpy as np
    from llama_cpp_py_sync import Llama

    from judgeforge.models.embedded import embedded_gguf_path

    context = seqs * (prompt + new) + 64
    model = Llama(
        str(embedded_gguf_path()), n_ctx=context, n_batch=2048, n_threads=1, n_seq_max=seqs
    )
    lib, ctx = model._lib, model._ctx
    vocab = lib.llama_vocab_n_tokens(lib.llama_model_get_vocab(model._model))
    rng = random.Random(0)
    prompts = [[rng.randrange(100, 20_000) for _ in range(prompt)] for _ in range(seqs)]
    batch = lib.llama_batch_init(max(2048, seqs), 0, seqs)

    def decode(entries: list[tuple[int, int, int, bool]]) -> None:
        """Decode (token, position, sequence, wants logits) entries in one llama_decode call."""
        batch.n_tokens = len(entries)
        for i, (token, position, sequence, logits) in enumerate(entries):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, position, 1
            batch.seq_id[i][0], batch.logits[i] = sequence, int(logits)
        if lib.llama_decode(ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")

    def greedy(index: int) -> int:
        logits = np.frombuffer(
            model._ffi.buffer(lib.llama_get_logits_ith(ctx, index), vocab * 4), dtype=np.float32
        )
        return int(logits.argmax())

    decode([(prompts[0][i], i, 0, i == 7) for i in range(8)])  # warm-up, then forget it
    lib.llama_memory_clear(lib.llama_get_memory(ctx), True)
    started = time.process_time()
    tokens: list[int] = []
    together = max(1, 2048 // prompt)  # whole prompts per llama_decode call (its n_batch)
    for first in range(0, seqs, together):
        group = range(first, min(seqs, first + together))
        entries = [(t, p, s, p == prompt - 1) for s in group for p, t in enumerate(prompts[s])]
        decode(entries)
        tokens += [greedy(i) for i, entry in enumerate(entries) if entry[3]]
    prefill = time.process_time() - started
    started = time.process_time()
    for step in range(new - 1):
        decode([(tokens[s], prompt + step, s, True) for s in range(seqs)])
        tokens = [greedy(s) for s in range(seqs)]
    decoding = time.process_time() - started
    lib.llama_batch_free(batch)
    return {"prefill_cpu_s": prefill, "decode_cpu_s": decoding}


def run_transformers(seqs: int, prompt: int, new: int, int8: bool) -> dict:
    """The same through judgeforge's ContinuousBatch (float32 as loaded, or its int8 layers)."""
    import torch
    from transformers import AutoModelForCausalLM

    from judgeforge.llm.local import ActiveRow, ContinuousBatch
    from judgeforge.llm.quantized import quantize_linears
    from judgeforge.llm.types import LLMRequest
    from judgeforge.models.embedded import embedded_model_dir

    torch.set_num_threads(1)
    model = AutoModelForCausalLM.from_pretrained(embedded_model_dir()).eval()
    if int8:
        quantize_linears(model)
    generator = torch.Generator().manual_seed(0)
    prompts = [
        torch.randint(100, 20_000, (prompt,), generator=generator).tolist() for _ in range(seqs)
    ]
    request = LLMRequest.from_prompt("-", max_tokens=new)
    batch = ContinuousBatch(model, pad_token_id=0)
    with torch.inference_mode():
        ContinuousBatch(model, pad_token_id=0).admit(
            [ActiveRow(0, request, 8, None)], [prompts[0][:8]]
        )
        started = time.process_time()
        batch.admit([ActiveRow(i, request, prompt, None) for i in range(seqs)], prompts)
        prefill = time.process_time() - started
        started = time.process_time()
        for _ in range(new - 1):
            batch.step()
        decoding = time.process_time() - started
    return {"prefill_cpu_s": prefill, "decode_cpu_s": decoding}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seqs", type=int, default=16)
    parser.add_argument("--prompt", type=int, default=256)
    parser.add_argument("--new", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--llama-cpp-path", help="folder holding llama_cpp_py_sync")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = (args.seqs, args.prompt, args.new)
    if args.worker:
        result = (
            run_llama_cpp(*shape)
            if args.worker == "llama.cpp"
            else run_transformers(*shape, int8=args.worker.endswith("int8"))
        )
        print(json.dumps(result))
        return
    print(f"{args.seqs} sequences, {args.prompt}-token prompts, {args.new} new tokens each:")
    for engine in args.engines.split(","):
        env = dict(os.environ)
        if engine == "llama.cpp":
            if not args.llama_cpp_path:
                continue
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [args.llama_cpp_path, env.get("PYTHONPATH")])
            )
        command = [sys.executable, __file__, "--worker", engine]
        command += ["--seqs", str(args.seqs), "--prompt", str(args.prompt), "--new", str(args.new)]
        runs = []
        for _ in range(args.repeats):
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        prefill = statistics.median(args.seqs * args.prompt / r["prefill_cpu_s"] for r in runs)
        decode = statistics.median(args.seqs * (args.new - 1) / r["decode_cpu_s"] for r in runs)
        print(
            f"  {engine:>21}: prompt {prefill:7.1f} tokens/CPU-s, generated {decode:6.1f} "
            f"tokens/CPU-s (medians of {args.repeats})",
            flush=True,
        )


if __name__ == "__main__":
    main()
