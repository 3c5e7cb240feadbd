"""How many console lines a `kedro run` prints, for any checkout of the project.

The run happens in a temporary copy of `--project` (default: this checkout) with its own code on
PYTHONPATH, the LLM and embeddings on the loopback server, and a tiny random base model for
training, so only the console differs between two checkouts, not the models' speed. stdout is
not a terminal, as in CI or `kedro run > run.log`.

    git archive <old-commit> | tar -x -C /tmp/before
    .venv/bin/python benchmarks/console_lines.py --project /tmp/before
    .venv/bin/python benchmarks/console_lines.py                      # this checkout
    .venv/bin/python benchmarks/console_lines.py --pipelines ingestion,synthesis
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.pipelines.synthesis.conftest import unique_examples_responder
from tests.support.openai_server import OpenAIServer, Reply
from tests.support.tiny_judge import save_tiny_llama


def project_copy(source: Path, target: Path) -> Path:
    """Copy what a fresh clone holds (sources, conf, examples, raw data) to `target`."""
    target.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(source / name, target / name)
    for folder in ("src", "conf", "examples"):
        shutil.copytree(
            source / folder,
            target / folder,
            ignore=shutil.ignore_patterns("__pycache__", "credentials.yml"),
        )
    shutil.copytree(source / "data" / "01_raw", target / "data" / "01_raw")
    return target


def count_lines(source: Path, pipelines: str | None) -> tuple[int, float, int, str]:
    """Return (console lines, seconds, exit code, console text) of one run in a copy of `source`."""
    with tempfile.TemporaryDirectory(prefix="judgeforge-console-") as tmp:
        project = project_copy(source, Path(tmp) / "project")
        tiny = save_tiny_llama(Path(tmp) / "tiny-llama")
        examples = unique_examples_responder()
        with OpenAIServer() as server:
            server.respond_with(
                lambda r: Reply() if r.path.endswith("/embeddings") else examples(r)
            )
            llm = {
                "provider": "openai",
                "model": "test-model",
                "embedding_model": "text-embedding-3-small",
                "base_url": server.base_url,
            }
            local = {
                "data_generation": {"llm": llm},
                "training": {"model": {"model_local_path": str(tiny)}},
            }
            (project / "conf" / "local" / "parameters.yml").write_text(yaml.safe_dump(local))
            env = {
                key: value
                for key, value in os.environ.items()
                if key not in ("PYTHONPATH", "COLUMNS")
            }
            env.update(
                PYTHONPATH=str(project / "src"), KEDRO_DISABLE_TELEMETRY="1", JUDGEFORGE_MLFLOW="0"
            )
            command = [sys.executable, "-m", "kedro", "run"] + (
                ["--pipelines", pipelines] if pipelines else []
            )
            started = time.perf_counter()
            result = subprocess.run(
                command, cwd=project, env=env, capture_output=True, text=True, check=False
            )
            console = result.stdout + result.stderr
            return (
                len(console.splitlines()),
                time.perf_counter() - started,
                result.returncode,
                console,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--project", type=Path, default=ROOT, help="checkout whose console is counted"
    )
    parser.add_argument(
        "--pipelines", default=None, help="as `kedro run --pipelines` (default: the whole chain)"
    )
    parser.add_argument("--show", action="store_true", help="print the console too")
    args = parser.parse_args()
    lines, seconds, code, console = count_lines(args.project.resolve(), args.pipelines)
    if args.show:
        print(console)
    print(f"{args.project}: {lines} console lines, exit code {code}, {seconds:.0f} s")


if __name__ == "__main__":
    main()
