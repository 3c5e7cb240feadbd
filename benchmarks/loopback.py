"""The loopback OpenAI-compatible server (tests/support/openai_server.py) in its own process, for benchmarks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def loopback_server(latency: float, *options: str) -> Iterator[str]:
    """Run the server (answers after `latency` s; `options` as its command line takes them); yield its base URL."""
    command = [
        sys.executable,
        "-m",
        "tests.support.openai_server",
        "--latency",
        str(latency),
        *options,
    ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    try:
        line = process.stdout.readline().strip() if process.stdout else ""
        if not line.startswith("READY "):
            raise RuntimeError(f"server did not start: {line!r}")
        yield line.removeprefix("READY ")
    finally:
        process.terminate()
        process.wait(10)


def control(base_url: str, action: str) -> dict[str, Any]:
    """Call the server's control API: `stats` (its counters since the last reset) or `reset`."""
    root = base_url.removesuffix("/v1")
    method = "GET" if action == "stats" else "POST"
    request = urllib.request.Request(f"{root}/_control/{action}", method=method)
    with urllib.request.urlopen(request) as answer:
        return json.loads(answer.read())
