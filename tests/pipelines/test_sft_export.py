"""SFT exports (DeepFabric's formats): read back by the libraries that consume them, through both doors."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
import yaml
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionUserMessageParam,
)
from pydantic import TypeAdapter
from trl.data_utils import is_conversational

from judgeforge.command_line import main
from judgeforge.config import load_run_config
from judgeforge.pipelines.training.nodes import format_judge_examples
from tests.run_yaml import EXAMPLES, loopback_run_yaml
from tests.support.commands import judgeforge, kedro
from tests.support.openai_server import example_answers

FORMATS = ["messages", "instruction", "openai", "alpaca"]
OPENAI_MESSAGES = TypeAdapter(
    list[
        ChatCompletionSystemMessageParam
        | ChatCompletionUserMessageParam
        | ChatCompletionAssistantMessageParam
    ]
)


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_judgeforge_run_writes_each_format_that_trains_the_same_judge(
    project_copy: Path, openai_server, tmp_path: Path
) -> None:
    openai_server.respond_with(example_answers)
    run_yaml = loopback_run_yaml(
        EXAMPLES[1],
        openai_server.base_url,
        project_copy / "run.yaml",
        run_steps=["data_generation"],
        data_generation__output__sft_formats=FORMATS,
    )
    result = judgeforge(project_copy, "run", "-c", str(run_yaml))
    assert result.returncode == 0, result.stderr[-3000:]
    config = load_run_config(run_yaml)
    folder = project_copy / config.data_generation.dataset_path
    splits = datasets.load_from_disk(str(folder))
    judge_train, judge_test = format_judge_examples(splits, config.training)
    exports = Path(f"{folder}-sft")
    assert sorted(p.relative_to(exports).as_posix() for p in exports.rglob("*.jsonl")) == sorted(
        f"{f}/{s}.jsonl" for f in FORMATS for s in ("test", "train")
    )
    for sft_format in FORMATS:
        loaded = datasets.load_dataset("json", data_files=str(exports / sft_format / "train.jsonl"))
        assert loaded["train"].num_rows == splits["train"].num_rows

    messages = read_lines(exports / "messages/train.jsonl")
    assert all(is_conversational(record) for record in messages)
    # the judge's own prompt and answer, after the system message
    assert [r["messages"][1]["content"] for r in messages] == judge_train["prompt"].tolist()
    assert [r["messages"][2]["content"] for r in messages] == judge_train["answer"].tolist()
    assert {r["messages"][2]["content"] for r in messages} <= {"true", "false"}
    system = messages[0]["messages"][0]
    assert system["role"] == "system" and "Answer with one of: false, true." in system["content"]

    for line in (exports / "openai/test.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        assert list(record) == ["messages"]
        OPENAI_MESSAGES.validate_python(record["messages"])
        assert [m["role"] for m in record["messages"]] == ["system", "user", "assistant"]
        assert all(isinstance(m["content"], str) and m["content"] for m in record["messages"])
    assert len(read_lines(exports / "openai/test.jsonl")) == len(judge_test)

    instruction = read_lines(exports / "instruction/train.jsonl")
    assert set(instruction[0]) == {"instruction", "response"}
    assert instruction[0]["instruction"].endswith(judge_train["prompt"].iloc[0])
    alpaca = read_lines(exports / "alpaca/train.jsonl")
    assert set(alpaca[0]) == {"instruction", "input", "output"}
    assert alpaca[0]["input"] == judge_train["prompt"].iloc[0]
    assert alpaca[0]["output"] == judge_train["answer"].iloc[0]


def test_kedro_run_exports_only_what_is_asked_without_a_system_message(
    project_copy: Path,
) -> None:
    # the final folder the default parameters point at, written the way synthesis writes it
    folder = project_copy / "data/generated_data/customer_complaint"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(
                {"text": ["Parcel lost", "Thanks!"], "label": ["1", "0"]}
            ),
            "test": datasets.Dataset.from_dict({"text": ["Broken lid"], "label": ["1"]}),
        }
    ).save_to_disk(str(folder))
    stale = Path(f"{folder}-sft/openai/train.jsonl")
    stale.parent.mkdir(parents=True)
    stale.write_text("{}\n")
    (project_copy / "conf/local/parameters_sft.yml").write_text(
        yaml.safe_dump(
            {
                "data_generation": {
                    "output": {"sft_formats": ["messages", "alpaca"], "sys_msg": False}
                }
            }
        )
    )
    result = kedro(project_copy, "run", "--pipelines", "sft_export")
    assert result.returncode == 0, result.stderr[-3000:]
    exports = Path(f"{folder}-sft")
    assert sorted(p.relative_to(exports).as_posix() for p in exports.rglob("*.jsonl")) == [
        "alpaca/test.jsonl",
        "alpaca/train.jsonl",
        "messages/test.jsonl",
        "messages/train.jsonl",
    ]
    messages = read_lines(exports / "messages/train.jsonl")
    assert [[m["role"] for m in r["messages"]] for r in messages] == [["user", "assistant"]] * 2
    assert [r["messages"][1]["content"] for r in messages] == ["true", "false"]
    assert all(is_conversational(record) for record in messages)
    alpaca = read_lines(exports / "alpaca/test.jsonl")
    assert alpaca[0]["input"] == "" and alpaca[0]["output"] == "true"
    assert "Broken lid" in alpaca[0]["instruction"]


@pytest.mark.parametrize(
    ("change", "line"),
    [
        (
            lambda config: config.pop("training"),
            (
                "data_generation.output.sft_formats: ['openai'] — needs the judge's prompt: add "
                "a training section with prompt_template"
            ),
        ),
        (
            lambda config: config["training"]["dataset"].update(train_label_column="verdict"),
            (
                "data_generation.output.sft_formats: ['openai'] — openai need column 'verdict' "
                "(training.dataset.train_label_column), which the generated dataset lacks "
                "(columns: text, label)"
            ),
        ),
    ],
)
def test_an_export_that_cannot_be_built_is_one_line_before_any_call(
    change, line: str, tmp_path: Path, capsys
) -> None:
    config = yaml.safe_load(EXAMPLES[1].read_text())
    config["run_steps"] = ["data_generation"]
    config["data_generation"]["output"]["sft_formats"] = ["openai"]
    change(config)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    assert main(["validate", "-c", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "(1 problem)" in err
    assert line in err
