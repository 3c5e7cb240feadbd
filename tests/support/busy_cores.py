"""Other processes keeping every core of this machine busy, for tests of how judgeforge shares the CPU."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
import pytest

MAX_CORES = 8  # keeping every core of a larger machine busy is not worth a test


@contextmanager
def every_core_busy() -> Iterator[int]:
    """Spin one process per core until the block ends; yield the core count."""
    cores = psutil.cpu_count()
    if cores > MAX_CORES:
        pytest.skip("keeping every core of a large machine busy is not worth it")
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    try:
        for spinner in spinners:  # each has started spinning
            psutil.Process(spinner.pid).cpu_percent(interval=0.1)
        yield cores
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
