"""Postprocessing of generated fields (Oumi's postprocessing_params): applied before validation, bad rules caught first."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import pytest
import yaml

from judgeforge.command_line import main
from judgeforge.config.data_generation import Postprocessing
from judgeforge.pipelines.synthesis.generation import SURPLUS
from judgeforge.pipelines.synthesis.parsing import postprocess
from tests.run_yaml import EXAMPLES, loopback_run_yaml
from tests.support.commands import judgeforge
from tests.support.openai_server import Reply

RULES = {
    "cut_prefix": "Message:",
    "cut_suffix": "[end]",
    "regex": r"<<(.+?)>>",
    "added_prefix": "> ",
    "added_suffix": ".",
}


@pytest.mark.parametrize(
    ("text", "rules", "expected"),
    [
        (
            "Sure! Message: the box was crushed [end] Hope this helps",
            {"cut_prefix": "Message:", "cut_suffix": "[end]"},
            "the box was crushed",
        ),
        ("no markers here ", {"cut_prefix": "Message:", "cut_suffix": "[end]"}, "no markers here"),
        ("say **refund now** please", {"regex": r"\*\*(.+?)\*\*"}, "refund now"),
        ("order 1234 late", {"regex": r"\d+"}, "1234"),
        ("nothing matches", {"regex": r"\d+"}, "nothing matches"),
        ("  kept  ", {"strip_whitespace": False, "added_suffix": "!"}, "  kept  !"),
        (" value ", {"added_prefix": "Response: ", "added_suffix": "."}, "Response: value."),
    ],
)
def test_each_rule_does_what_oumi_documents(text: str, rules: dict, expected: str) -> None:
    assert postprocess(text, Postprocessing(**rules)) == expected


def test_judgeforge_run_cleans_generated_fields_before_they_are_checked(
    project_copy: Path, openai_server, tmp_path: Path
) -> None:
    numbers = itertools.count()

    def chatty(request) -> Reply:
        n = next(numbers)
        if n == 0:  # cleaned, this one is too short to accept (the check sees the cleaned text)
            return Reply.json({"examples": [{"text": "Here you go. Message: <<ok>> [end]"}]})
        body = (
            f"Here you go. Message: <<My order {n} came late and I want my money back>> [end] Bye"
        )
        return Reply.json({"examples": [{"text": body}]})

    openai_server.respond_with(chatty)
    run_yaml = loopback_run_yaml(
        EXAMPLES[1],
        openai_server.base_url,
        project_copy / "run.yaml",
        run_steps=["data_generation"],
        data_generation__generation__postprocessing={"text": RULES},
    )
    result = judgeforge(project_copy, "run", "-c", str(run_yaml))
    assert result.returncode == 0, result.stderr[-3000:]
    rows = pd.read_parquet(project_copy / "data/03_primary/synthetic_examples.parquet")
    assert len(rows) == 4
    assert rows["text"].str.fullmatch(r"> My order \d+ came late and I want my money back\.").all()
    rejects = pd.read_csv(project_copy / "data/02_intermediate/synthetic_rejects.csv")
    # the follow-up round may bring a valid example more than needed: set aside as surplus
    assert rejects.loc[rejects["reason"] != SURPLUS, "text"].tolist() == ["> ok."]


@pytest.mark.parametrize(
    ("rules", "line"),
    [
        (
            {"text": {"regex": "(unclosed"}},
            (
                "data_generation.generation.postprocessing.text.regex: '(unclosed' — is not a "
                "valid regular expression: missing ), unterminated subpattern at position 0"
            ),
        ),
        (
            {"body": {"cut_prefix": "x"}},
            (
                "data_generation.generation.postprocessing.body: 'body' — names no feature "
                "column (features: text)"
            ),
        ),
    ],
)
def test_a_broken_rule_is_one_line_before_any_call(
    rules: dict, line: str, tmp_path: Path, capsys
) -> None:
    config = yaml.safe_load(EXAMPLES[1].read_text())
    config["data_generation"]["generation"]["postprocessing"] = rules
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    assert main(["validate", "-c", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "(1 problem)" in err
    assert line in err
