"""The example environment conf/s3 moves the catalog to the object store and turns on the dataset push;
one data_root value moves every output of a run there."""

from __future__ import annotations

from pathlib import Path

import datasets
import fsspec
import yaml

from judgeforge import run_data_generation
from judgeforge.config import validate_run_config
from judgeforge.config_loader import RunConfigLoader
from judgeforge.settings import CONFIG_LOADER_ARGS
from tests.conftest import PROJECT_ROOT
from tests.run_yaml import EXAMPLES, loopback_run_yaml
from tests.support.openai_server import example_answers
from tests.support.s3_server import BUCKET


def test_s3_environment_points_data_root_at_s3_and_reads_credentials_from_the_environment(
    monkeypatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
    monkeypatch.delenv("LUNA_OBJECT_STORE_BUCKET", raising=False)
    loader = RunConfigLoader(str(PROJECT_ROOT / "conf"), env="s3", **CONFIG_LOADER_ARGS)

    assert (
        loader["catalog"]["judge_labels"]["filepath"]
        == "s3://my-team-bucket/judgeforge/02_intermediate/judge_labels.parquet"
    )
    assert loader["credentials"]["object_store"] == {
        "key": "AKIAEXAMPLE",
        "secret": "secret-example",
    }
    output = validate_run_config(loader["parameters"]).data_generation.output
    assert (output.push_to_object_store, output.object_store_bucket, output.object_store_blob) == (
        True,
        "luna-ft",
        "generated_data",
    )


def test_one_data_root_value_moves_every_output_to_the_object_store(
    project_copy: Path, s3_server, openai_server, tmp_path: Path, monkeypatch
) -> None:
    openai_server.respond_with(example_answers)
    team = project_copy / "conf" / "team_s3"
    team.mkdir()
    (team / "globals.yml").write_text(f"data_root: s3://{BUCKET}/judgeforge\n", encoding="utf-8")
    (team / "credentials.yml").write_text(
        yaml.safe_dump({"object_store": s3_server.storage_options}), encoding="utf-8"
    )
    # catalog entries under data_root find the store through s3fs's own environment lookup
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    example = next(path for path in EXAMPLES if path.stem == "binary_single_customer_complaint")
    run_yaml = loopback_run_yaml(
        example,
        openai_server.base_url,
        tmp_path / "run.yaml",
        run_steps=["data_generation"],
        data_generation__output__push_to_hub=False,
    )
    path = run_data_generation(config_path=run_yaml, env="team_s3", project_path=project_copy)

    assert path == f"s3://{BUCKET}/judgeforge/generated_data/customer_complaint"
    store = fsspec.filesystem("s3", **s3_server.storage_options)
    pulled = datasets.load_from_disk(
        f"s3://{BUCKET}/judgeforge/generated_data/customer_complaint",
        storage_options=s3_server.storage_options,
    )
    assert (
        set(pulled) == {"train", "test"}
        and (pulled["train"].to_pandas()["source"] == "synthetic").sum() == 4
    )
    assert store.exists(f"{BUCKET}/judgeforge/08_reporting/generation_report.json")
    assert not (project_copy / "data" / "generated_data").exists()
    assert not (project_copy / "data" / "08_reporting").exists()
