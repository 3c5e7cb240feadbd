"""The public doors under a distributed launcher, in a copy of the project, two CPU processes on gloo
training one tiny judge: `torchrun --nproc-per-node 2 -m kedro run --pipelines training`, and
`accelerate launch --num_processes 2 -m judgeforge run -c train.yaml`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml
from datasets import Dataset, DatasetDict

from judgeforge.training import Judge
from tests.support.tiny_judge import SEPARABLE_TEXTS, separable_split, tiny_judge_config

JUDGE_DIR = "data/06_models/tiny-judge"
PROCESSES = 2


# Each launcher's command for two CPU processes; torchrun keeps each process's output in a folder.
LAUNCHERS = {
    "torchrun": lambda log_dir: [
        "torch.distributed.run",
        "--standalone",  # a free rendezvous port: other launches on this machine do not collide
        f"--nproc-per-node={PROCESSES}",
        f"--log-dir={log_dir}",
        "--redirects=3",
    ],
    # --multi_gpu is accelerate's multi-process launcher; without a GPU the Trainer trains on CPU
    "accelerate": lambda log_dir: [
        "accelerate.commands.launch",
        "--multi_gpu",
        f"--num_processes={PROCESSES}",
        "--main_process_port=0",  # a free port
    ],
}


def launch(
    launcher: str, project: Path, log_dir: Path, *module_args: str
) -> subprocess.CompletedProcess:
    """Run `python -m <module_args>` (kedro or judgeforge) with two processes under `launcher` in
    `project`; return the launcher's run.

    The launcher is started in its own session and the whole session is killed when the command
    overruns, so no training process outlives the test.
    """
    command = [sys.executable, "-m", *LAUNCHERS[launcher](log_dir), "-m", *module_args]
    with subprocess.Popen(
        command,
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            output, _ = process.communicate(timeout=900)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    return subprocess.CompletedProcess(command, process.returncode, output, "")


def rank_logs(log_dir: Path) -> dict[int, str]:
    """Return each rank's stdout and stderr as torchrun's --log-dir kept them."""
    return {
        rank: "".join(
            path.read_text() for path in sorted(log_dir.glob(f"*/attempt_0/{rank}/std*.log"))
        )
        for rank in range(PROCESSES)
    }


def training_config(project: Path, model_dir: Path, head: str) -> dict:
    """Give `project` a persisted training dataset; return a small training config for `head` that reads it."""
    train = separable_split(24).to_pandas()
    train["source"] = ["seed" if i < 12 else "synthetic" for i in range(24)]
    train["row_id"] = [f"train-{i}" for i in range(24)]
    test = separable_split(8).to_pandas().assign(source="seed")
    test["row_id"] = [f"holdout-{i}" for i in range(8)]
    DatasetDict(
        {"train": Dataset.from_pandas(train), "test": Dataset.from_pandas(test)}
    ).save_to_disk(str(project / "data/generated_data/customer_complaint"))
    return tiny_judge_config(
        model_dir,
        model={"head": head},
        dataset={"name": "customer_complaint", "local_path": "data/generated_data", "local": True},
        training={
            **tiny_judge_config(model_dir)["training"],
            "num_train_epochs": 2,
            "per_device_train_batch_size": 4,
            # a held-out validation split (no k-fold): the launch's collective scoring still runs
            "cross_validation_below": 0,
            "validation_fraction": 0.5,
        },
    )


def check_judge(project: Path, processes: list[dict]) -> None:
    """Assert that both ranks trained, MLflow has one run and the saved judge loads and predicts."""
    assert [p["rank"] for p in processes] == [0, 1]
    assert {p["backend"] for p in processes} == {"gloo"}
    assert len({p["pid"] for p in processes}) == PROCESSES
    runs = [p for p in (project / "mlruns").glob("*/*") if p.is_dir()]
    assert len(runs) == 1
    judge = Judge.load(project / JUDGE_DIR)
    scored = judge.predict([{"text": SEPARABLE_TEXTS[0]}, {"text": SEPARABLE_TEXTS[1]}])
    assert list(scored["prediction"]) == ["true", "false"]
    assert (scored["probability_true"] + scored["probability_false"]).round(6).eq(1).all()


def test_torchrun_two_gloo_processes_train_one_judge_that_rank_0_writes(
    project_copy: Path, tiny_llama_dir: Path, tmp_path: Path
) -> None:
    (project_copy / "conf/local/parameters_training.yml").write_text(
        yaml.safe_dump({"training": training_config(project_copy, tiny_llama_dir, "generate")})
    )
    log_dir = tmp_path / "ranks"
    result = launch("torchrun", project_copy, log_dir, "kedro", "run", "--pipelines", "training")
    logs = rank_logs(log_dir)
    assert result.returncode == 0, result.stdout[-3000:] + logs[0][-3000:] + logs[1][-3000:]

    judge_dir = project_copy / JUDGE_DIR
    log = json.loads((judge_dir / "training_log.json").read_text())
    processes = log["processes"]
    check_judge(project_copy, processes)
    # 6 fit rows (half of the 12 seed rows are held out, then 12 synthetic: 18), 4 per device and
    # step over 2 processes: 3 batches per process and epoch, the same optimizer steps on both.
    assert log["summary"]["train_examples"] == 18
    assert [p["batches_per_epoch"] for p in processes] == [3, 3]
    assert {p["optimizer_steps"] for p in processes} == {log["summary"]["optimizer_steps"]} == {6}
    assert log["validation"]["method"] == "held out" and log["validation"]["rows"] == 6
    assert [e["epoch"] for e in log["candidates"]["generate"]["epochs"]] == [1, 2]

    # each rank trained and said so in its own log; only rank 0 went on past training and tracked
    for rank in range(PROCESSES):
        assert f"rank {rank} of {PROCESSES} (cpu" in logs[rank]
    assert "[4/4] training.train_judge" in logs[1]
    assert "training.score_with_judge" not in logs[1] and "MLflow run" not in logs[1]
    assert "[10/10] training.publish_judge_model" in logs[0] and "MLflow run" in logs[0]
    metrics = json.loads((judge_dir / "metrics.json").read_text())
    assert metrics["training"]["optimizer_steps"] == 6
    assert "data-parallel over 2 processes (gloo; cpu:0)" in (judge_dir / "README.md").read_text()


def test_accelerate_launch_of_a_training_run_yaml_trains_the_classify_head(
    project_copy: Path, tiny_llama_dir: Path, tmp_path: Path
) -> None:
    run_yaml = project_copy / "train.yaml"
    run_yaml.write_text(
        yaml.safe_dump(
            {
                "run_steps": ["training"],
                "metric_name": "customer_complaint",
                "training": training_config(project_copy, tiny_llama_dir, "classify"),
            }
        )
    )
    result = launch("accelerate", project_copy, tmp_path, "judgeforge", "run", "-c", str(run_yaml))
    assert result.returncode == 0, result.stdout[-3000:]

    log = json.loads((project_copy / JUDGE_DIR / "training_log.json").read_text())
    assert log["head"] == "classify"
    check_judge(project_copy, log["processes"])
    assert [p["batches_per_epoch"] for p in log["processes"]] == [3, 3]
    for rank in range(PROCESSES):
        assert f"rank {rank} of {PROCESSES} (cpu" in result.stdout
    assert result.stdout.count("MLflow run") == 1
    # the door's report: written by rank 0 after training, with the judge's section
    assert result.stdout.count("report_judge_section") == 1
    assert (project_copy / "data/08_reporting/report.html").stat().st_size > 0


def test_a_launch_refuses_any_pipeline_but_training_before_a_node_runs(
    project_copy: Path, tmp_path: Path
) -> None:
    log_dir = tmp_path / "ranks"
    result = launch("torchrun", project_copy, log_dir, "kedro", "run", "--pipelines", "ingestion")
    logs = rank_logs(log_dir)
    assert result.returncode != 0
    # The first rank to refuse ends the launch: torchrun stops the other, which on a busy machine
    # may not have got as far as its own refusal (CI once saw its log empty).
    refusal = "a distributed launch (2 processes) runs only the training pipeline"
    assert any(refusal in log and "ingestion" in log for log in logs.values()), logs
    assert not (project_copy / "data/02_intermediate").exists()
