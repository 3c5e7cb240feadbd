"""Issue 14's bad input through the doors: one line each, exit status 2, and no paid call where it is known before.

Each case is a run YAML (or Kedro conf) a user could write; `judgeforge run` against the
loopback server must end with the line naming what to fix, and the server must have seen no
request. A topic tree the generator answers junk for cannot be known before its first call:
that case (and the unparseable document that stops a run) is in test_grounding.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from tests.pipelines.synthesis.test_grounding import RETURNS, write_documents
from tests.run_yaml import EXAMPLES, loopback_run_yaml
from tests.support.commands import judgeforge, kedro
from tests.support.loopback_parameters import write_loopback_parameters
from tests.support.openai_server import example_answers


def config_problem(path: str, rule: str) -> Callable[[Path], list[str]]:
    """Return the stderr lines of the run YAML in `runs` with one problem (`{runs}` in the rule is that folder)."""
    return lambda runs: [
        f"judgeforge: invalid {runs / 'run.yaml'} (1 problem):",
        f"  {path}: {rule.format(runs=runs)}",
    ]


def documents(entry: dict) -> dict:
    return {"data_generation__diversity": {"input_documents": [entry]}}


DOCUMENTS = "data_generation.diversity.input_documents[0]"
BAD_INPUT: dict[str, tuple[dict, Callable[[Path], list[str]]]] = {
    "a glob that matches nothing": (
        documents({"path": "docs/*.pdf"}),
        config_problem(f"{DOCUMENTS}.path", "'docs/*.pdf' — {runs}/docs/*.pdf: matches no file"),
    ),
    "an empty document": (
        documents({"path": "empty.txt"}),
        config_problem(f"{DOCUMENTS}.path", "'empty.txt' — {runs}/empty.txt: is empty"),
    ),
    "a segment length shorter than the overlap": (
        documents(
            {
                "path": "notes.txt",
                "segmentation_params": {"segment_length": 50, "segment_overlap": 80},
            }
        ),
        config_problem(
            f"{DOCUMENTS}.segmentation_params.segment_overlap",
            "80 — must be shorter than segment_length (50)",
        ),
    ),
    "a postprocessing regex that does not compile": (
        {"data_generation__generation__postprocessing": {"text": {"regex": "([a-z"}}},
        config_problem(
            "data_generation.generation.postprocessing.text.regex",
            "'([a-z' — is not a valid regular expression: unterminated character set at position 1",
        ),
    ),
    "an export format that needs a missing column": (
        {
            "data_generation__output__sft_formats": ["openai"],
            "training__dataset__train_label_column": "verdict",
        },
        config_problem(
            "data_generation.output.sft_formats",
            "['openai'] — openai need column 'verdict' (training.dataset.train_label_column), "
            "which the generated dataset lacks (columns: text, label)",
        ),
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_judgeforge_run_refuses_bad_input_before_any_call(
    case: str, project_copy: Path, tmp_path: Path, openai_server
) -> None:
    openai_server.respond_with(example_answers)
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "empty.txt").write_text("")
    (runs / "notes.txt").write_text(RETURNS)
    sections, expected = BAD_INPUT[case]
    run_yaml = loopback_run_yaml(
        EXAMPLES[1],
        openai_server.base_url,
        runs / "run.yaml",
        run_steps=["data_generation"],
        **sections,
    )
    result = judgeforge(project_copy, "run", "-c", str(run_yaml))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stderr.splitlines() == expected(runs)
    assert openai_server.requests == []
    assert not (project_copy / "data/02_intermediate").exists()


def test_kedro_run_refuses_a_glob_that_matches_nothing_before_any_call(
    project_copy: Path, openai_server
) -> None:
    openai_server.respond_with(example_answers)
    write_loopback_parameters(
        project_copy, openai_server.base_url, diversity={"input_documents": [{"path": "docs/*.md"}]}
    )
    result = kedro(project_copy, "run", "--pipelines", "ingestion,synthesis")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].endswith(
        f"{DOCUMENTS}.path: 'docs/*.md' — {project_copy}/docs/*.md: matches no file"
    ), lines
    assert openai_server.requests == []
    assert not (project_copy / "data/02_intermediate").exists()


@pytest.mark.parametrize("skip", [False, True])
def test_a_document_that_fails_to_parse_is_named_and_skipped_only_when_asked(
    skip: bool, project_copy: Path, tmp_path: Path, openai_server
) -> None:
    openai_server.respond_with(example_answers)
    docs = tmp_path / "runs" / "docs"
    write_documents(docs)
    (docs / "notes.txt").write_bytes(b"\xff\xfe\x00binary, not UTF-8 text")  # unreadable as text
    entry = {
        "path": "docs/*",
        "skip_unparseable": skip,
        "segmentation_params": {"segment_length": 120, "segment_overlap": 30},
    }
    run_yaml = loopback_run_yaml(
        EXAMPLES[1],
        openai_server.base_url,
        tmp_path / "runs" / "run.yaml",
        run_steps=["data_generation"],
        **documents(entry),
    )
    # wide enough that the warning naming the file is not wrapped
    result = judgeforge(project_copy, "run", "-c", str(run_yaml), env={"COLUMNS": "400"})
    if not skip:
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
        line = [line for line in result.stderr.splitlines() if line.strip()][-1]
        assert line.startswith(f"judgeforge: {DOCUMENTS}: {docs / 'notes.txt'} cannot be parsed")
        assert line.endswith("fix or remove it, or set skip_unparseable: true")
        assert openai_server.requests == []
        return
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert f"skipped {docs / 'notes.txt'}, which cannot be parsed" in output
    segments = pd.read_parquet(project_copy / "data/02_intermediate/document_segments.parquet")
    assert set(segments.document.map(lambda p: Path(p).name)) == {
        "manual.pdf",
        "policy.docx",
        "faq.html",
        "notes.md",
    }
    synthetic = pd.read_parquet(project_copy / "data/03_primary/synthetic_examples.parquet")
    assert synthetic.segment_id.isin(segments.segment_id).all()
