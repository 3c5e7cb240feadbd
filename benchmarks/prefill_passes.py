"""Prefill of the local provider's ContinuousBatch, at several prefill token budgets, in one process.

`--rows` random prompts of `--shortest` to `--longest` tokens, each opening with the same
84-token system turn (computed once and shared, as in real use), join an empty batch shortest
first through `ContinuousBatch.admit`, which prefills them in passes of at most
`PREFILL_TOKENS` padded tokens. The budgets alternate within each repeat, so machine load hits
them alike; a budget at least rows × longest is one pass over every row (the code before the
tenth round of issue 15). Prints the median wall seconds per budget and whether every budget
picked the same first tokens.

    python benchmarks/prefill_passes.py [--rows 16] [--shortest 700] [--longest 950]
        [--budgets 65536,4096,2048,1024] [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

SYSTEM_TURN_TOKENS = 84


def main() -> None:
    import torch

    from judgeforge.llm import local
    from judgeforge.llm.local import ActiveRow, ContinuousBatch, load_causal_lm
    from judgeforge.llm.types import LLMRequest
    from judgeforge.models.embedded import embedded_model_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--shortest", type=int, default=700)
    parser.add_argument("--longest", type=int, default=950)
    parser.add_argument("--budgets", default="65536,4096,2048,1024")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_causal_lm(embedded_model_dir())
    generator = torch.Generator().manual_seed(0)
    system_turn = torch.randint(100, 20_000, (SYSTEM_TURN_TOKENS,), generator=generator).tolist()
    lengths = sorted(
        torch.randint(args.shortest, args.longest + 1, (args.rows,), generator=generator).tolist()
    )
    prompts = [
        system_turn
        + torch.randint(100, 20_000, (n - SYSTEM_TURN_TOKENS,), generator=generator).tolist()
        for n in lengths
    ]
    request = LLMRequest.from_prompt("-", max_tokens=1)
    budgets = [int(b) for b in args.budgets.split(",")]
    seconds: dict[int, list[float]] = {b: [] for b in budgets}
    first_tokens: set[tuple[int, ...]] = set()
    prefixes = local.PrefixStore()
    with torch.inference_mode():
        for _ in range(args.repeats):
            for budget in budgets:
                local.PREFILL_TOKENS = budget
                rows = [
                    ActiveRow(i, request, len(p), None, prefix_tokens=SYSTEM_TURN_TOKENS)
                    for i, p in enumerate(prompts)
                ]
                batch = ContinuousBatch(loaded.model, loaded.tokenizer.pad_token_id, prefixes)
                started = time.perf_counter()
                batch.admit(rows, prompts)
                seconds[budget].append(time.perf_counter() - started)
                first_tokens.add(tuple(row.tokens[0] for row in batch.rows))
    print(
        f"{args.rows} prompts of {args.shortest}-{args.longest} tokens, {args.threads} thread(s), "
        f"medians of {args.repeats}:"
    )
    for budget, runs in seconds.items():
        passes = len(local.prefill_passes([n - SYSTEM_TURN_TOKENS for n in lengths], budget))
        print(
            f"  budget {budget:>6} tokens, {passes:>2} passes: {statistics.median(runs):6.2f} s "
            f"({' / '.join(f'{r:.2f}' for r in runs)})",
            flush=True,
        )
    print(f"  the same first token of every row under every budget: {len(first_tokens) == 1}")


if __name__ == "__main__":
    main()
