"""The public doors as child processes (`python -m judgeforge|kedro ...` in a folder, or killed mid-run), and the reports a run leaves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import yaml

# What the developer's shell may hold that a test's run must not see: keys, and a switch that
# changes what a run prints.
_SCRUBBED = ("HF_TOKEN", "OPENAI_API_KEY", "JUDGEFORGE_VERBOSE")


def judgeforge_command(
    *args: str, env: Mapping[str, str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """Return the command line of `python -m judgeforge *args` and its environment (`env` added)."""
    environment = {key: value for key, value in os.environ.items() if key not in _SCRUBBED}
    return [sys.executable, "-m", "judgeforge", *args], {**environment, **(env or {})}


def judgeforge(
    cwd: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run `python -m judgeforge` in `cwd` and return the finished process."""
    return finished(*judgeforge_command(*args, env=env), cwd)


def kedro(
    cwd: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run the kedro CLI in `cwd` (the environment as it is, `env` added) and return the finished process."""
    command = [sys.executable, "-m", "kedro", *args]
    return finished(command, {**os.environ, **(env or {})}, cwd, timeout)


def run_synthesis(
    project_copy: Path,
    model_cache: Path,
    total: int,
    llm: dict | None = None,
    env: dict[str, str] | None = None,
    succeeds: bool = True,
) -> subprocess.CompletedProcess:
    """Run `kedro run --pipelines ingestion,synthesis` for `total` one-example calls on the
    embedded model of `model_cache`; return the finished process (asserted to succeed unless
    `succeeds` is False)."""
    local = {
        "data_generation": {
            "generation": {"total_examples": total, "examples_per_call": 1},
            "data_quality_metrics": {"enabled": False},
            "llm": llm or {},
        }
    }
    (project_copy / "conf" / "local" / "parameters.yml").write_text(yaml.safe_dump(local))
    env = {"JUDGEFORGE_CACHE_DIR": str(model_cache), **(env or {})}
    result = kedro(project_copy, "run", "--pipelines", "ingestion,synthesis", env=env, timeout=900)
    assert result.returncode == 0 or not succeeds, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def finished(
    command: list[str], env: Mapping[str, str], cwd: Path, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run `command` in `cwd` to its end, capturing its output as text; return the finished process."""
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )


def kill_once(
    command: list[str],
    cwd: Path,
    until: Callable[[], bool],
    env: Mapping[str, str] | None = None,
    seconds: float = 300.0,
) -> bool:
    """Start `command` in `cwd`, SIGKILL it once `until()` holds; return whether it held.

    It is killed (if still running) after `seconds` too, or as soon as it ends on its own.
    """
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and process.poll() is None:
            if until():
                return True
            time.sleep(0.01)
        return until()
    finally:
        process.kill()
        process.wait(30)


def run_report(project: Path, name: str) -> dict:
    """Return the JSON report `name` (generation_report, labelling_report, ...) a run wrote in `project`."""
    return json.loads((project / f"data/08_reporting/{name}.json").read_text())
