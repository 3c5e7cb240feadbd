"""The example environment conf/s3 moves the catalog to the object store and turns on the dataset push."""

from __future__ import annotations

from judgeforge.config import validate_run_config
from judgeforge.config_loader import RunYamlConfigLoader
from judgeforge.settings import CONFIG_LOADER_ARGS
from tests.conftest import PROJECT_ROOT


def test_s3_environment_points_data_root_at_s3_and_reads_credentials_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
    monkeypatch.delenv("LUNA_OBJECT_STORE_BUCKET", raising=False)
    loader = RunYamlConfigLoader(str(PROJECT_ROOT / "conf"), env="s3", **CONFIG_LOADER_ARGS)

    assert loader["catalog"]["judge_labels"]["filepath"] == "s3://my-team-bucket/judgeforge/02_intermediate/judge_labels.parquet"
    assert loader["credentials"]["object_store"] == {"key": "AKIAEXAMPLE", "secret": "secret-example"}
    output = validate_run_config(loader["parameters"]).data_generation.output
    assert (output.push_to_object_store, output.object_store_bucket, output.object_store_blob) == (True, "luna-ft", "generated_data")
