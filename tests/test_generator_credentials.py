"""Each of diversity.generators is checked like the main client: a missing key is a line of the pre-flight list."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.run_yaml import loopback_run_yaml
from tests.support.commands import judgeforge
from tests.test_user_errors import COMPLAINTS

GENERATORS = [
    {"provider": "openai", "model": "gpt-4o-mini", "weight": 1.0},
    {"provider": "gemini", "model": "gemini-2.5-flash", "weight": 1.0},
]
GEMINI_LINE = (
    "diversity.generators[1] gemini/gemini-2.5-flash: no API key for provider 'gemini': "
    "set GOOGLE_API_KEY or GEMINI_API_KEY, or api_key in its credentials entry "
    "(conf/local/credentials.yml)"
)
NO_GEMINI_KEY = {"GOOGLE_API_KEY": "", "GEMINI_API_KEY": ""}


def error_line(result: subprocess.CompletedProcess) -> str:
    """The line a failed command ends with (a tracking library may log before it)."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()][-1]


def test_validate_lists_a_generator_without_a_key_with_the_other_problems(
    project_copy: Path,
) -> None:
    config = yaml.safe_load(COMPLAINTS.read_text())
    generation = config["data_generation"]
    generation["output"]["push_to_hub"] = True
    generation["llm"].update(provider="openai", model="gpt-4.1-mini")
    generation["diversity"] = {"generators": GENERATORS}
    # next to the example: its seed path is relative to its folder
    run_yaml = project_copy / "examples" / "run.yaml"
    run_yaml.write_text(yaml.safe_dump(config, sort_keys=False))
    result = judgeforge(
        project_copy,
        "validate",
        "-c",
        str(run_yaml),
        env={"OPENAI_API_KEY": "sk-test-0123456789", **NO_GEMINI_KEY},
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "judgeforge: the run cannot start (2 problems):",
        "  data_generation.output.push_to_hub needs a Hugging Face token: set HF_TOKEN (or token in the `hub` entry of conf/local/credentials.yml), or turn the push off",
        f"  {GEMINI_LINE}",
    ]


def test_a_run_with_a_generator_it_cannot_use_stops_before_any_call(
    project_copy: Path, openai_server, tmp_path: Path
) -> None:
    def config(name: str, generators: list[dict] = GENERATORS, **engine: object) -> str:
        path = loopback_run_yaml(
            COMPLAINTS,
            openai_server.base_url,
            tmp_path / name,
            run_steps=["data_generation"],
            data_generation__diversity={"generators": generators},
            data_generation__generation__async_config={"max_concurrent_requests": 2, **engine},
        )
        return str(path)

    key = {"OPENAI_API_KEY": "sk-test-0123456789"}
    no_key = judgeforge(project_copy, "run", "-c", config("run.yaml"), env={**key, **NO_GEMINI_KEY})
    assert error_line(no_key) == f"judgeforge: {GEMINI_LINE}"

    # vegas has no batch API here (openai and gemini do)
    vegas = {"provider": "vegas", "model": "m", "base_url": openai_server.base_url, "weight": 1.0}
    vegas_key = {**key, "VEGAS_API_KEY": "vg-test-0123456789"}
    batch = judgeforge(
        project_copy,
        "run",
        "-c",
        config("batch.yaml", [GENERATORS[0], vegas], batch=True),
        env=vegas_key,
    )
    assert error_line(batch) == (
        "judgeforge: diversity.generators[1] vegas/m: async_config.batch: "
        "provider 'vegas' has no batch API judgeforge submits to; batch works with openai, "
        "gemini (set batch: false for vegas)"
    )
    assert openai_server.requests == []
    assert not (project_copy / "data/02_intermediate").exists()
