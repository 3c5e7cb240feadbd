"""Work on the shipped models spread over CPU cores as lanes: whole units of work side by side,
each on its own single-threaded lane.

A 135M model's norms, rotary and activation steps on one batch (or one decoding step) are too
small for torch to split across threads, so a single stream of work leaves a core idle for much
of each forward pass, and on a machine other jobs keep busy a multi-threaded forward waits on its
slowest thread. Lanes keep every core busy with whole units instead; a unit computes the same
on a lane as it would alone on one thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Lanes:
    """How many lanes run, and a `map` that runs its function on them (results in input order)."""

    count: int
    map: Callable[[Callable[[Any], Any], Iterable[Any]], Iterator[Any]]


@contextmanager
def cpu_lanes(device: torch.device, units: int) -> Iterator[Lanes]:
    """Yield lanes for `units` pieces of work on `device`: one per torch thread on CPU (at most
    one per unit), a plain `map` on one lane or on an accelerator.

    torch's thread count is process-wide: it is 1 while the lanes run and restored after.
    """
    threads = torch.get_num_threads()
    count = min(threads, units)
    if device.type != "cpu" or count < 2:
        yield Lanes(1, map)
        return
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(count, thread_name_prefix="cpu-lane") as pool:
            yield Lanes(count, pool.map)
    finally:
        torch.set_num_threads(threads)
