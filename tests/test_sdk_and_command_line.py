"""The run-YAML door: `judgeforge validate/run` and the SDK functions on the example YAMLs."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import datasets
import pandas as pd
import pytest
import yaml
from kedro.framework.session import KedroSession

from judgeforge import run_data_generation, run_training
from judgeforge.command_line import main
from judgeforge.config import load_run_config
from judgeforge.sdk import data_generation_pipelines, pipeline_name
from tests.run_yaml import EXAMPLES, loopback_run_yaml
from tests.support.commands import judgeforge
from tests.support.openai_server import example_answers
from tests.support.tiny_judge import save_tiny_llama


def test_examples_cover_the_four_metric_shapes() -> None:
    shapes = set()
    for path in EXAMPLES:
        metric = load_run_config(path).data_generation.metric
        shapes.add((metric.type, metric.input_format))
    assert shapes == {
        ("binary", "single"),
        ("multi-class", "single"),
        ("binary", "tuple"),
        ("binary", "rag"),
    }


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_validate_command_accepts_each_example(example: Path, capsys) -> None:
    assert main(["validate", "-c", str(example)]) == 0
    assert "valid (run_steps: data_generation, training)" in capsys.readouterr().out


def test_validate_command_lists_every_problem_and_exits_2(tmp_path: Path, capsys) -> None:
    config = yaml.safe_load(EXAMPLES[0].read_text())
    config["data_generation"]["generation"]["context_examples"] = 5
    config["data_generation"]["source_data"]["sampling"]["enhancement_fraction"] = 0
    config["training"]["training"]["optim"] = "sgdd"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    assert main(["validate", "-c", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "(3 problems)" in err
    assert (
        "data_generation.source_data.sampling.enhancement_fraction: 0 — Input should be greater than 0"
        in err
    )
    assert "training.training.optim: 'sgdd' — must be one of" in err


def test_missing_config_file_is_one_clear_line(capsys) -> None:
    assert main(["validate", "-c", "nowhere.yaml"]) == 2
    assert "nowhere.yaml: '(file)' — config file not found" in capsys.readouterr().err


def test_pipelines_follow_run_steps_and_switches() -> None:
    config = load_run_config(EXAMPLES[0])
    assert pipeline_name(config) == "ingestion+synthesis+diagnostics+training"
    quiet = config.model_copy(deep=True)
    quiet.data_generation.data_quality_metrics.enabled = False
    assert data_generation_pipelines(quiet) == ["ingestion", "synthesis"]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_run_data_generation_writes_the_dataset_for_each_example(
    example: Path, project_copy: Path, openai_server, tmp_path: Path
) -> None:
    openai_server.respond_with(example_answers)
    run_yaml = loopback_run_yaml(
        example, openai_server.base_url, project_copy / "run.yaml", run_steps=["data_generation"]
    )
    config = load_run_config(run_yaml)
    path = run_data_generation(config_path=run_yaml, project_path=project_copy)

    # where it is: the path the YAML writes, anchored at its folder (the project copy here)
    assert Path(path) == project_copy / config.data_generation.dataset_path
    splits = datasets.load_from_disk(str(project_copy / path))
    features = config.data_generation.source_data.dataset.columns.features
    label = config.data_generation.source_data.dataset.columns.label
    assert set(splits) == {"train", "test"}
    train = splits["train"].to_pandas()
    assert (train["source"] == "synthetic").sum() == 4
    assert set(features) | {label, "row_id", "source"} == set(train.columns)
    report = json.loads((project_copy / "data/08_reporting/generation_report.json").read_text())
    assert report["delivered_total"] == 4
    assert openai_server.answered_twice() == []


def test_judgeforge_run_command_in_a_subprocess(
    project_copy: Path, openai_server, tmp_path: Path
) -> None:
    openai_server.respond_with(example_answers)
    run_yaml = loopback_run_yaml(
        EXAMPLES[0],
        openai_server.base_url,
        project_copy / "run.yaml",
        run_steps=["data_generation"],
    )
    result = judgeforge(project_copy, "run", "-c", str(run_yaml))
    assert result.returncode == 0, result.stderr[-3000:]
    repo = load_run_config(run_yaml).data_generation.output.dataset.repo_name
    dataset = project_copy.resolve() / "data/generated_data" / repo
    assert f"dataset: {dataset}\n" in result.stdout


def test_run_yaml_with_publishing_is_one_session_with_only_its_parameters(
    project_copy: Path, openai_server, tmp_path: Path, recording_api, monkeypatch
) -> None:
    openai_server.respond_with(example_answers)
    # a base parameter a run YAML does not have: validation rejects it if it reaches the run
    (project_copy / "conf/base/parameters_team.yml").write_text(
        "team_only_setting: 1\n", encoding="utf-8"
    )
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    sessions = []
    real_create = KedroSession.create.__func__
    monkeypatch.setattr(
        KedroSession,
        "create",
        classmethod(lambda cls, *a, **kw: sessions.append(kw) or real_create(cls, *a, **kw)),
    )
    run_yaml = loopback_run_yaml(
        EXAMPLES[0],
        openai_server.base_url,
        project_copy / "run.yaml",
        run_steps=["data_generation"],
        data_generation__output__push_to_hub=True,
        data_generation__output__hub={"organization": "acme"},
    )
    path = run_data_generation(config_path=run_yaml, project_path=project_copy)

    assert len(sessions) == 1
    repo = load_run_config(run_yaml).data_generation.output.dataset.repo_name
    (_, created), (_, uploaded) = recording_api.calls
    assert created["repo_id"] == f"acme/{repo}" and uploaded["token"] == "hf_test_token"
    pushed = pd.read_parquet(io.BytesIO(uploaded["files"]["data/train-00000-of-00001.parquet"]))
    assert len(pushed) == datasets.load_from_disk(str(project_copy / path))["train"].num_rows


@pytest.mark.parametrize("where", ["inside_a_project", "outside_any_project"])
def test_relative_paths_in_a_run_yaml_start_at_its_folder_whatever_the_current_folder(
    where: str, project_copy: Path, openai_server, tmp_path: Path
) -> None:
    openai_server.respond_with(example_answers)
    root = project_copy if where == "inside_a_project" else tmp_path / "outside"
    jobs, elsewhere = root / "jobs" / "week1", root / "elsewhere"
    (jobs / "seeds").mkdir(parents=True)
    elsewhere.mkdir()
    seed = project_copy / "data/01_raw/customer_messages.csv"
    (jobs / "seeds" / "messages.csv").write_bytes(seed.read_bytes())
    example = next(path for path in EXAMPLES if path.stem == "binary_single_customer_complaint")
    run_yaml = loopback_run_yaml(
        example,
        openai_server.base_url,
        jobs / "run.yaml",
        run_steps=["data_generation"],
        data_generation__source_data__dataset__csv__file_path="seeds/messages.csv",
    )
    config_arg = str(run_yaml.relative_to(root))  # given relative to the current folder's parent
    for command in ("validate", "run"):
        result = judgeforge(elsewhere, command, "-c", f"../{config_arg}")
        assert result.returncode == 0, result.stderr[-3000:]
    repo = load_run_config(run_yaml).data_generation.output.dataset.repo_name
    # output.local_path ./data/generated_data: next to the YAML, not the project's or the cwd's
    train = datasets.load_from_disk(str(jobs / "data/generated_data" / repo))["train"].to_pandas()
    assert (train["source"] == "synthetic").sum() == 4
    assert (train["source"] == "seed").sum() > 0
    assert not (project_copy / "data/generated_data").exists()
    assert list(elsewhere.iterdir()) == []
    # the catalog's own files follow Kedro's rule: the project folder (the YAML's outside one)
    catalog_root = project_copy if where == "inside_a_project" else jobs
    assert (catalog_root / "data/08_reporting/generation_report.json").is_file()


def job_elsewhere(
    project_copy: Path, openai_server, tmp_path: Path, **overrides: object
) -> tuple[Path, Path, Path]:
    """Return (run YAML, its folder, an empty folder to start in) of a two-step job in project_copy.

    The outputs as the complaint example writes them: ./data/generated_data (under data_root)
    and data/06_models (the judge, a local folder); a tiny random base model to train.
    """
    openai_server.respond_with(example_answers)
    jobs, elsewhere = project_copy / "jobs" / "week1", tmp_path / "elsewhere"
    jobs.mkdir(parents=True)
    elsewhere.mkdir()
    example = next(path for path in EXAMPLES if path.stem == "binary_single_customer_complaint")
    run_yaml = loopback_run_yaml(
        example,
        openai_server.base_url,
        jobs / "run.yaml",
        training__model__model_local_path=str(save_tiny_llama(tmp_path / "tiny-llama")),
        training__training__max_seq_length=256,
        training__training__per_device_train_batch_size=8,
        **overrides,
    )
    return run_yaml, jobs, elsewhere


def test_the_sdk_returns_where_the_dataset_and_the_judge_are_from_another_current_folder(
    project_copy: Path, openai_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_yaml, jobs, elsewhere = job_elsewhere(project_copy, openai_server, tmp_path)
    monkeypatch.chdir(elsewhere)
    config_path = os.path.relpath(run_yaml, elsewhere)

    dataset = run_data_generation(config_path=config_path, project_path=project_copy)
    assert dataset == str(jobs.resolve() / "data/generated_data/customer_complaint")
    assert datasets.load_from_disk(dataset)["train"].num_rows > 0

    judge = run_training(config_path=config_path, project_path=project_copy)
    assert judge == str(jobs.resolve() / "data/06_models/customer_complaint-judge")
    assert json.loads((Path(judge) / "metrics.json").read_text())["fine_tuned"]
    assert list(elsewhere.iterdir()) == []


def test_judgeforge_run_prints_where_the_results_really_are_as_the_sdk_returns_them(
    project_copy: Path, openai_server, tmp_path: Path
) -> None:
    # run from another folder, every output under data/ moved by the environment's data_root:
    # the dataset is under data_root, the judge (a local folder) next to the run YAML
    outputs = tmp_path / "outputs"
    (project_copy / "conf/local/globals.yml").write_text(f"data_root: {outputs}\n")
    run_yaml, jobs, elsewhere = job_elsewhere(
        project_copy, openai_server, tmp_path, data_generation__data_quality_metrics__enabled=False
    )
    config_path = os.path.relpath(run_yaml, elsewhere)
    result = judgeforge(elsewhere, "run", "-c", config_path, "--project-path", str(project_copy))
    assert result.returncode == 0, result.stderr[-3000:]
    printed = dict(
        line.split(": ", 1)
        for line in result.stdout.splitlines()
        if line.startswith(("dataset: ", "judge: "))
    )
    assert printed == {
        "dataset": str(outputs / "generated_data/customer_complaint"),
        "judge": str(jobs.resolve() / "data/06_models/customer_complaint-judge"),
    }
    assert datasets.load_from_disk(printed["dataset"])["train"].num_rows > 0
    assert json.loads((Path(printed["judge"]) / "metrics.json").read_text())["fine_tuned"]
    assert not (jobs / "data/generated_data").exists()
    assert list(elsewhere.iterdir()) == []
