"""Collective validation scoring: two real gloo processes each score a share and get the same array."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch.distributed as dist
import torch.multiprocessing as mp

from judgeforge.training.distributed import current_launch, gathered_logits

PROMPTS = [f"prompt {i}" for i in range(7)]


def score(prompts: list[str]) -> np.ndarray:
    """Class logits that name their prompt: (number, -number)."""
    numbers = [float(prompt.split()[1]) for prompt in prompts]
    return np.array([[n, -n] for n in numbers]).reshape(len(prompts), 2)


def _gather_in_group(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    scored: list[str] = []

    def counting_score(prompts: list[str]) -> np.ndarray:
        scored.extend(prompts)
        return score(prompts)

    logits = gathered_logits(counting_score, PROMPTS)
    Path(out_dir, f"{rank}.json").write_text(
        json.dumps({"logits": logits.tolist(), "scored": scored})
    )
    dist.destroy_process_group()


def test_each_process_scores_its_share_and_all_get_every_logit_in_prompt_order(
    tmp_path: Path,
) -> None:
    mp.spawn(_gather_in_group, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    results = [json.loads((tmp_path / f"{rank}.json").read_text()) for rank in (0, 1)]
    for result in results:
        assert np.array_equal(np.array(result["logits"]), score(PROMPTS))
    assert results[0]["scored"] == PROMPTS[0::2] and results[1]["scored"] == PROMPTS[1::2]


def test_one_process_scores_everything_itself() -> None:
    assert current_launch() is None
    assert np.array_equal(gathered_logits(score, PROMPTS), score(PROMPTS))
