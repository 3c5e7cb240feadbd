"""Training under a distributed launcher (`torchrun`, `accelerate launch`): which process this is, and what
the processes share.

A launcher starts one process per device and tells each its place through the torch.distributed
environment variables (RANK, WORLD_SIZE, LOCAL_RANK); the transformers Trainer reads them and
trains with DistributedDataParallel, each process on its share of every batch. judgeforge splits
the rest of the work this way (docs/scale.md):
- every process reads the same persisted training dataset and makes the same, seeded,
  validation split or folds;
- model selection is collective: each process scores its share of the validation rows after
  every epoch and all of them act on the gathered logits, so they pick the same epoch, stop
  together and fit the same temperature;
- only rank 0 runs what follows training (scoring the test split, the baselines, the reports,
  the push) and writes anything; the other processes leave when the judge is trained.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Launch:
    """This process's place in a distributed launch."""

    rank: int
    world_size: int
    local_rank: int

    @property
    def main(self) -> bool:
        """Return whether this is rank 0, the process that writes."""
        return self.rank == 0


def current_launch() -> Launch | None:
    """Return this process's place when a launcher started several processes, else None."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return None
    return Launch(
        rank=int(os.environ.get("RANK", "0")),
        world_size=world_size,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def is_worker_process() -> bool:
    """Return whether this is a process of a launch other than rank 0: it trains and writes nothing."""
    launch = current_launch()
    return launch is not None and not launch.main


def ddp_backend(device: str) -> str:
    """Return the torch.distributed backend for `device`: NCCL between GPUs, gloo between CPU processes."""
    return "nccl" if device == "cuda" else "gloo"


def bind_device(device: str) -> None:
    """Make `cuda` mean this process's own GPU (LOCAL_RANK) under a launch, so no two processes share one."""
    launch = current_launch()
    if launch is not None and device == "cuda":
        import torch

        torch.cuda.set_device(launch.local_rank)


def _group_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gathered_logits(
    score: Callable[[Sequence[str]], np.ndarray], prompts: Sequence[str]
) -> np.ndarray:
    """Return score(prompts); in a process group each process scores every world_size-th prompt and
    all of them get the same gathered array, in prompt order."""
    size = _group_size()
    if size == 1:
        return score(prompts)
    import torch.distributed as dist

    rank = dist.get_rank()
    shares: list[Any] = [None] * size
    dist.all_gather_object(shares, score(list(prompts)[rank::size]))
    logits = np.zeros((len(prompts), shares[0].shape[1]), dtype=shares[0].dtype)
    for position, share in enumerate(shares):
        logits[position::size] = share
    return logits


def gathered(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Return every process's `record`, by rank ([record] outside a process group)."""
    size = _group_size()
    if size == 1:
        return [record]
    import torch.distributed as dist

    records: list[Any] = [None] * size
    dist.all_gather_object(records, record)
    return records
