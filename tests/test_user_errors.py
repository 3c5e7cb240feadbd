"""Failures a user causes, through the public doors: one line, exit status 2, nothing misread or lost."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import PROJECT_ROOT
from tests.run_yaml import EXAMPLES, loopback_run_yaml
from tests.support.commands import judgeforge, kedro

SEED = "data/01_raw/customer_messages.csv"
REJECTS = "data/02_intermediate/seed_rejects.csv"
REPORT = "data/08_reporting/ingestion_report.json"
COMPLAINTS = PROJECT_ROOT / "examples" / "binary_single_customer_complaint.yaml"


def one_line_error(result: subprocess.CompletedProcess, prefix: str) -> str:
    """Return the error line of a failed command, after checking it is the only thing on stderr."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(prefix), result.stderr[-3000:]
    return lines[0]


def rejects(project: Path) -> pd.DataFrame:
    return pd.read_csv(project / REJECTS, dtype=str, keep_default_na=False)


# ---------------------------------------------------------------- run YAML reading


def test_a_key_written_twice_is_an_error_with_both_lines(tmp_path: Path) -> None:
    text = COMPLAINTS.read_text().replace(
        "    total_examples: 40 ", "    total_examples: 40\n    total_examples: 4000000 ", 1
    )
    text = text.replace(
        "seed: 42", "seed: 42\n      seed: 7", 1
    )  # a second repeat, in another mapping
    (tmp_path / "run.yaml").write_text(text)
    second = next(i for i, line in enumerate(text.splitlines(), 1) if "4000000" in line)
    third = next(i for i, line in enumerate(text.splitlines(), 1) if "seed: 7" in line)
    result = judgeforge(tmp_path, "validate", "-c", "run.yaml")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "judgeforge: invalid run.yaml (2 problems):",
        f"  run.yaml:line {third}: '(yaml)' — key 'seed' is written twice (first at line {third - 1}): keep one",
        f"  run.yaml:line {second}: '(yaml)' — key 'total_examples' is written twice (first at line {second - 1}): keep one",
    ]


def test_yes_and_no_stay_text_in_a_run_yaml(tmp_path: Path) -> None:
    from judgeforge.config import load_run_config

    text = (
        COMPLAINTS.read_text()
        .replace("        label: 0\n", "        label: no\n")
        .replace("        label: 1\n", "        label: yes\n")
    )
    (tmp_path / "run.yaml").write_text(text)
    labels = [
        c.label for c in load_run_config(tmp_path / "run.yaml").data_generation.metric.class_labels
    ]
    assert labels == ["no", "yes"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.yaml", "", "config file is empty"),
        ("comments.yaml", "# nothing yet\n", "config file holds only comments: it is empty"),
        ("examples", None, "is a folder, not a config file: pass the run YAML inside it"),
        ("absent.yaml", None, "config file not found"),
    ],
)
def test_unusable_config_files_are_one_clear_problem(
    tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    if content is not None:
        (tmp_path / name).write_text(content)
    elif name == "examples":
        (tmp_path / name).mkdir()
    result = judgeforge(tmp_path, "validate", "-c", name)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"judgeforge: invalid {name} (1 problem):",
        f"  {name}: '(file)' — {message}",
    ]


def test_verbose_flag_and_environment_variable_show_the_traceback(tmp_path: Path) -> None:
    quiet = judgeforge(tmp_path, "validate", "-c", "absent.yaml")
    assert "Traceback" not in quiet.stderr
    for result in (
        judgeforge(tmp_path, "--verbose", "validate", "-c", "absent.yaml"),
        judgeforge(tmp_path, "validate", "-c", "absent.yaml", env={"JUDGEFORGE_VERBOSE": "1"}),
    ):
        assert result.returncode == 2
        assert "Traceback" in result.stderr and result.stderr.rstrip().endswith(
            "config file not found"
        )


# ---------------------------------------------------------------- seed data, through kedro run


def test_stray_quote_and_ragged_line_are_quarantined_with_their_lines(project_copy: Path) -> None:
    seed = project_copy / SEED
    lines = seed.read_text().split("\n")
    lines[4] = lines[4].replace(",", ',"', 1)  # line 5: a quote opens the text ...
    lines[6] = (
        '5,I was sold a used phone as new.",1'  # ... and closes on line 7: lines 5-7 are one record
    )
    lines[9] = lines[9] + ",extra"  # line 10: one field too many
    seed.write_text("\n".join(lines))
    result = kedro(project_copy, "run", "--pipelines", "ingestion")
    assert result.returncode == 0, result.stderr[-3000:]
    table = rejects(project_copy)
    malformed = table[table["reason"] == "malformed_row"]
    assert malformed["detail"].str.slice(0, 8).tolist() == ["line 5: ", "line 10:"]
    assert malformed["detail"].iloc[0] == (
        "line 5: a quoted field opened on line 5 runs on over line 6, which reads as a row of its own: check the quotes on line 5"
    )
    assert malformed["raw_record"].iloc[1] == lines[9] + "\n"
    report = json.loads((project_copy / REPORT).read_text())
    # lines 5-7 are one record: 118 records, 2 of them set aside
    assert (
        report["rows_in"],
        report["rows_rejected"],
        report["rejected_by_reason"]["malformed_row"],
    ) == (118, 2, 2)
    assert report["rows_clean"] == 116


def test_a_mostly_malformed_file_is_refused_naming_it_and_the_rejects_are_written(
    project_copy: Path,
) -> None:
    rows = [f"{i},message number {i}, with a comma,{i % 2}" for i in range(6)] + [
        f"{i},fine message {i},{i % 2}" for i in range(6, 10)
    ]
    (project_copy / SEED).write_text("row_id,text,label\n" + "\n".join(rows) + "\n")
    result = kedro(project_copy, "run", "--pipelines", "ingestion")
    one_line_error(
        result,
        "Error: seed file data/01_raw/customer_messages.csv: 6 of 10 records cannot be read as rows "
        "(first: line 2: 4 fields where the header has 3); check the separator, the header and the quoting",
    )
    assert rejects(project_copy)["reason"].tolist() == ["malformed_row"] * 6


def test_bad_jsonl_line_is_quarantined(project_copy: Path) -> None:
    rows = pd.read_csv(project_copy / SEED, dtype=str).to_dict("records")
    lines = [json.dumps(row) for row in rows]
    lines[6] = "{not json"
    (project_copy / "data/01_raw/seed.jsonl").write_text("\n".join(lines) + "\n")
    result = kedro(
        project_copy,
        "run",
        "--pipelines",
        "ingestion",
        "--params",
        "data_generation.source_data.dataset.csv.file_path=data/01_raw/seed.jsonl",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = rejects(project_copy)
    assert table["reason"].tolist() == ["malformed_row"]
    assert table["detail"].iloc[0].startswith("line 7: not valid JSON (")
    assert table["raw_record"].iloc[0] == "{not json"


def test_labels_written_1_point_0_are_the_labels_1_and_0(project_copy: Path) -> None:
    seed = project_copy / SEED
    seed.write_text(seed.read_text().replace(",1\n", ",1.0\n").replace(",0\n", ",0.0\n"))
    result = kedro(project_copy, "run", "--pipelines", "ingestion")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((project_copy / REPORT).read_text())["rows_clean"] == 120


def test_all_rows_rejected_names_the_labels_found_and_expected_and_keeps_the_rejects(
    project_copy: Path,
) -> None:
    seed = project_copy / SEED
    seed.write_text(seed.read_text().replace(",1\n", ",yes\n").replace(",0\n", ",no\n"))
    result = kedro(project_copy, "run", "--pipelines", "ingestion")
    line = one_line_error(
        result,
        "Error: seed file data/01_raw/customer_messages.csv: no usable seed rows, all 120 were rejected",
    )
    assert line.endswith(
        "labels found: 'no', 'yes', expected: '1', '0' (see the seed rejects file)"
    )
    assert len(rejects(project_copy)) == 120


def test_a_class_without_seed_rows_is_named(project_copy: Path) -> None:
    seed = project_copy / SEED
    seed.write_text(seed.read_text().replace(",0\n", ",1\n"))
    result = kedro(project_copy, "run", "--pipelines", "ingestion")
    one_line_error(
        result,
        "Error: seed file data/01_raw/customer_messages.csv: class not_complaint (label 0) has no usable seed rows",
    )


def test_a_text_over_max_text_chars_is_rejected_with_its_length(project_copy: Path) -> None:
    result = kedro(
        project_copy,
        "run",
        "--pipelines",
        "ingestion",
        "--params",
        "data_generation.source_data.max_text_chars=100",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = rejects(project_copy)
    assert set(table["reason"]) == {"text_too_long"}
    assert (
        table["detail"]
        .str.fullmatch(r"column text holds \d+ characters \(source_data.max_text_chars: 100\)")
        .all()
    )
    assert (table["text"].str.len() > 100).all()


def test_a_failed_ingestion_leaves_a_report_that_says_so(project_copy: Path) -> None:
    assert kedro(project_copy, "run", "--pipelines", "ingestion").returncode == 0
    first = json.loads((project_copy / REPORT).read_text())["run"]
    assert (
        first["status"] == "completed" and first["pipelines"] == ["ingestion"] and first["run_id"]
    )
    (project_copy / SEED).unlink()
    result = kedro(project_copy, "run", "--pipelines", "ingestion")
    line = one_line_error(result, "Error: seed file ")
    assert line.endswith(
        "customer_messages.csv: not found (check source_data.dataset.csv.file_path)"
    )
    report = json.loads((project_copy / REPORT).read_text())
    assert list(report) == ["run"]
    assert report["run"]["status"] == "failed" and report["run"]["run_id"] != first["run_id"]
    assert report["run"]["error"] == line.removeprefix("Error: ")


def test_only_missing_outputs_reruns_the_stage_a_failed_run_left_a_placeholder_for(
    project_copy: Path,
) -> None:
    seed = (project_copy / SEED).read_bytes()
    (project_copy / SEED).unlink()
    assert kedro(project_copy, "run", "--pipelines", "ingestion").returncode != 0
    assert json.loads((project_copy / REPORT).read_text())["run"]["status"] == "failed"

    (project_copy / SEED).write_bytes(seed)
    rerun = kedro(project_copy, "run", "--pipelines", "ingestion", "--only-missing-outputs")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    report = json.loads((project_copy / REPORT).read_text())
    assert report["run"]["status"] == "completed" and report["rows_in"] > 0
    # and a run with nothing missing skips every node
    again = kedro(project_copy, "run", "--pipelines", "ingestion", "--only-missing-outputs")
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((project_copy / REPORT).read_text())["run"] == report["run"]


def test_an_unknown_pipeline_lists_the_pipelines(project_copy: Path) -> None:
    line = one_line_error(
        kedro(project_copy, "run", "--pipelines", "ingestion,nonexistent"), "Error: "
    )
    assert line == (
        "Error: no pipeline named 'nonexistent': the pipelines are diagnostics, ingestion, "
        "label_only, labelling, publishing, reporting, sft_export, synthesis, training, and their "
        "compositions "
        "in chain order joined with '+' (e.g. ingestion+synthesis+diagnostics)"
    )


def test_training_alone_without_its_dataset_says_what_to_run_or_set(project_copy: Path) -> None:
    # a fresh project: nothing has written the folder training.dataset names
    line = one_line_error(kedro(project_copy, "run", "--pipelines", "training"), "Error: ")
    folder = project_copy / "data/generated_data/customer_complaint"
    assert line == (
        f"Error: dataset {folder}: not found (run the data pipelines first "
        "(ingestion+synthesis), or point training.dataset (local_path, name) at a saved DatasetDict)"
    )
    assert not (project_copy / "data/06_models").exists()


def test_a_comma_list_that_can_feed_training_in_no_composition_is_one_line(
    project_copy: Path,
) -> None:
    line = one_line_error(
        kedro(project_copy, "run", "--pipelines", "synthesis,training"), "Error: "
    )
    assert line.startswith("Error: --pipelines synthesis,training: training can read what ")
    assert line.endswith("or run training in a run of its own")


# ---------------------------------------------------------------- keys and pre-flight


def test_a_client_the_run_does_not_call_never_asks_for_its_key(
    project_copy: Path, openai_server
) -> None:
    from tests.test_sdk_and_command_line import example_answers

    openai_server.respond_with(example_answers)
    params = {
        "data_generation.llm.provider": "openai",
        "data_generation.llm.base_url": openai_server.base_url,
        "data_generation.llm.model": "test-model",
        "data_generation.labelling.judge_provider": "gemini",  # labelling is off: the judge is never called
        "data_generation.labelling.judge_model": "gemini-2.5-flash",
        "data_generation.generation.total_examples": "4",
        "data_generation.generation.examples_per_call": "1",
    }
    result = kedro(
        project_copy,
        "run",
        "--pipelines",
        "ingestion,synthesis",
        "--params",
        ",".join(f"{k}={v}" for k, v in params.items()),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "GOOGLE_API_KEY" not in result.stderr + result.stdout


def test_a_missing_key_stops_the_run_before_its_first_node(project_copy: Path) -> None:
    result = kedro(
        project_copy,
        "run",
        "--pipelines",
        "ingestion,synthesis",
        "--params",
        "data_generation.llm.provider=openai,data_generation.llm.model=gpt-4.1-mini",
    )
    one_line_error(
        result, "Error: generator_llm: no API key for provider 'openai': set OPENAI_API_KEY"
    )
    assert not (project_copy / "data/02_intermediate").exists()


def test_push_without_token_fails_before_anything_is_generated(
    project_copy: Path, openai_server, tmp_path: Path
) -> None:
    run_yaml = loopback_run_yaml(
        EXAMPLES[1],
        openai_server.base_url,
        project_copy / "run.yaml",
        run_steps=["data_generation"],
        data_generation__output__push_to_hub=True,
    )
    result = judgeforge(project_copy, "run", "-c", str(run_yaml))
    one_line_error(
        result,
        "judgeforge: data_generation.output.push_to_hub needs a Hugging Face token: set HF_TOKEN",
    )
    assert openai_server.requests == []
    assert not (project_copy / "data/generated_data").exists()


def test_validate_lists_every_problem_a_run_would_meet(project_copy: Path, tmp_path: Path) -> None:
    config = yaml.safe_load(COMPLAINTS.read_text())
    generation = config["data_generation"]
    generation["output"]["push_to_hub"] = True
    generation["llm"].update(provider="openai", model="gpt-4.1-mini")
    generation["source_data"]["dataset"]["csv"]["file_path"] = "data/01_raw/absent.csv"
    (project_copy / "data/blocked").write_text("a file where a folder should be")
    config["training"]["output"]["local_path"] = "data/blocked/models"
    (project_copy / "run.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    result = judgeforge(project_copy, "validate", "-c", str(project_copy / "run.yaml"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "judgeforge: the run cannot start (4 problems):",
        "  data_generation.source_data.dataset.csv.file_path data/01_raw/absent.csv: not found",
        "  data_generation.output.push_to_hub needs a Hugging Face token: set HF_TOKEN (or token in the `hub` entry of conf/local/credentials.yml), or turn the push off",
        "  generator_llm: no API key for provider 'openai': set OPENAI_API_KEY, or api_key in its credentials entry (conf/local/credentials.yml)",
        f"  training.output.local_path data/blocked/models: {project_copy / 'data/blocked'} is a file, not a folder",
    ]


def test_a_conf_file_with_a_key_written_twice_is_named(project_copy: Path) -> None:
    parameters = project_copy / "conf/base/parameters_ingestion.yml"
    parameters.write_text(
        parameters.read_text().replace("      seed: 42\n", "      seed: 42\n      seed: 7\n", 1)
    )
    second = next(
        i
        for i, line in enumerate(parameters.read_text().splitlines(), 1)
        if line == "      seed: 7"
    )
    line = one_line_error(kedro(project_copy, "run", "--pipelines", "ingestion"), "Error: ")
    assert (
        line
        == f"Error: conf/base/parameters_ingestion.yml: key 'seed' is written twice (lines {second - 1} and {second}): keep one"
    )


def test_a_parameter_missing_from_conf_is_named(project_copy: Path) -> None:
    parameters = project_copy / "conf/base/parameters_ingestion.yml"
    parameters.write_text(parameters.read_text().replace("    max_text_chars: 100000\n", ""))
    line = one_line_error(kedro(project_copy, "run", "--pipelines", "ingestion"), "Error: ")
    assert line == (
        "Error: conf: no value for the parameter(s) data_generation.source_data.max_text_chars: "
        "add them to a parameters*.yml (see docs/configuration.md)"
    )
