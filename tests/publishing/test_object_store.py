"""Object-store pushes and pulls against a loopback S3 server: byte-for-byte round trips, catalog entries, clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import datasets
import pandas as pd
import pytest
from kedro.io import DataCatalog
from kedro_datasets.pandas import ParquetDataset

from judgeforge.config.data_generation import OutputConfig
from judgeforge.config.training import ModelConfig
from judgeforge.datasets import DatasetDictDataset
from judgeforge.pipelines.publishing.nodes import publish_dataset
from judgeforge.publishing import ObjectStore, ObjectStoreError, archive_url
from judgeforge.publishing.object_store import pull_model_from_object_store
from tests.support.s3_server import BUCKET


def files_of(folder: Path) -> dict[str, bytes]:
    """Return every file under `folder` by relative path, with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def dataset_dict() -> datasets.DatasetDict:
    return datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"row_id": ["syn-0", "seed-1"], "text": ["Late!", "Hi"], "label": ["1", "0"]}),
            "test": datasets.Dataset.from_dict({"row_id": ["7"], "text": ["Broken"], "label": ["1"]}),
        }
    )


def test_archive_urls_default_to_s3_and_keep_an_explicit_scheme() -> None:
    assert archive_url("luna-ft", "generated_data", "complaints") == "s3://luna-ft/generated_data/complaints.tar.gz"
    assert archive_url("gs://team-bucket/", "/models/", "org/judge") == "gs://team-bucket/models/org/judge.tar.gz"


def test_dataset_folder_and_model_directory_round_trip_byte_for_byte(s3_server, dataset_dict, tmp_path: Path) -> None:
    store = ObjectStore(s3_server.storage_options)
    dataset_dir = tmp_path / "complaints"
    dataset_dict.save_to_disk(str(dataset_dir))
    model_dir = tmp_path / "judge"
    (model_dir / "adapter").mkdir(parents=True)
    (model_dir / "adapter" / "adapter_model.safetensors").write_bytes(os.urandom(300_000))
    (model_dir / "judge_config.json").write_text('{"type": "boolean"}')

    for folder, blob in ((dataset_dir, "generated_data"), (model_dir, "finetuned_models")):
        url = archive_url(BUCKET, blob, folder.name)
        receipt = store.push_directory(folder, url)
        assert receipt["url"] == url and receipt["files"] == len(files_of(folder))
        pulled = store.pull_directory(url, tmp_path / "pulled" / folder.name)
        assert files_of(pulled) == files_of(folder)
    assert datasets.load_from_disk(str(tmp_path / "pulled" / "complaints"))["train"]["text"] == ["Late!", "Hi"]


def test_pull_replaces_a_stale_local_copy(s3_server, tmp_path: Path) -> None:
    store = ObjectStore(s3_server.storage_options)
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("new")
    store.push_directory(source, archive_url(BUCKET, "blob", "thing"))
    target = tmp_path / "target"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    store.pull_directory(archive_url(BUCKET, "blob", "thing"), target)
    assert files_of(target) == {"a.txt": b"new"}


def test_catalog_entry_on_s3_saves_and_loads_through_the_server(s3_server) -> None:
    credentials = {"key": s3_server.key, "secret": s3_server.secret, "client_kwargs": {"endpoint_url": s3_server.endpoint_url}}
    catalog = DataCatalog({"holdout_table": ParquetDataset(filepath=f"s3://{BUCKET}/judgeforge/03_primary/holdout.parquet", credentials=credentials)})
    table = pd.DataFrame({"row_id": ["1", "2"], "text": ["a", "b"], "label": ["1", "0"]})
    catalog.save("holdout_table", table)
    assert catalog.load("holdout_table").equals(table)


def test_publish_dataset_to_the_object_store_and_train_from_it(s3_server, dataset_dict, tmp_path: Path) -> None:
    output = OutputConfig(push_to_hub=False, push_to_object_store=True, object_store_bucket=BUCKET, dataset={"repo_name": "complaints"})
    receipt = publish_dataset(dataset_dict, "card", output, hub=None, object_store=ObjectStore(s3_server.storage_options))
    assert receipt == {"hub": None, "object_store": {"url": f"s3://{BUCKET}/generated_data/complaints.tar.gz", "bytes": receipt["object_store"]["bytes"], "files": receipt["object_store"]["files"]}}

    pulled = DatasetDictDataset(str(tmp_path / "data" / "complaints"), archive_url=receipt["object_store"]["url"], credentials=s3_server.storage_options).load()
    assert pulled["train"].to_dict() == dataset_dict["train"].to_dict()
    assert (tmp_path / "data" / "complaints" / "dataset_dict.json").is_file()


def test_pull_model_and_its_mapped_adapter(s3_server, tmp_path: Path) -> None:
    store = ObjectStore(s3_server.storage_options)
    for blob, name, file in (("base_models", "org/base-1b", "config.json"), ("adapters", "org/base-1b-lora", "adapter_config.json")):
        folder = tmp_path / "upload" / name
        folder.mkdir(parents=True)
        (folder / file).write_text(name)
        store.push_directory(folder, archive_url(BUCKET, blob, name))
    model = ModelConfig(name="org/base-1b", peft_model_map={"org/base-1b": "org/base-1b-lora"}, pull_model_from_object_store=True, model_object_store_bucket=BUCKET)
    pulled = pull_model_from_object_store(store, model, tmp_path / "models")
    assert pulled == {"base_model": tmp_path / "models/org/base-1b", "adapter": tmp_path / "models/adapters/org/base-1b-lora"}
    assert (pulled["adapter"] / "adapter_config.json").read_text() == "org/base-1b-lora"


def test_wrong_credentials_and_a_missing_bucket_are_clear_errors(s3_server, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    wrong = ObjectStore({"key": "AKIAWRONG", "secret": "wrong", "endpoint_url": s3_server.endpoint_url})
    with pytest.raises(ObjectStoreError, match=r"upload to s3://judgeforge-test/blob/x.tar.gz: access denied — check the object_store credentials"):
        wrong.push_directory(tmp_path, archive_url(BUCKET, "blob", "x"))
    store = ObjectStore(s3_server.storage_options)
    with pytest.raises(ObjectStoreError, match="bucket not found — check that bucket 'no-such-bucket' exists"):
        store.push_directory(tmp_path, archive_url("no-such-bucket", "blob", "x"))
    with pytest.raises(ObjectStoreError, match="download from s3://judgeforge-test/blob/absent.tar.gz: bucket or artifact not found"):
        store.pull_directory(archive_url(BUCKET, "blob", "absent"), tmp_path / "out")
    assert "wrong" not in repr(wrong)
