"""SeedDataset: seed rows from CSV / TSV / JSONL / Parquet files and Hugging Face datasets."""

from __future__ import annotations

import json

import datasets
import huggingface_hub.constants
import pandas as pd
import pytest
from kedro.io import DatasetError

from judgeforge.datasets import SeedDataset
from judgeforge.schema import MALFORMED, RAW_RECORD, SOURCE_LINE

ROWS = [
    {"text": "I love it", "label": "1"},
    {"text": "Awful, just awful", "label": "0"},
    {"text": 'meh, "fine", ok', "label": "0"},
]


def load_error(dataset: SeedDataset) -> str:
    """Return the one-line DatasetError message the load raises."""
    with pytest.raises(DatasetError) as caught:
        dataset.load()
    message = str(caught.value)
    assert "\n" not in message.strip() and message.startswith("seed "), message
    return message


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """Keep the datasets cache of parquet loads inside tmp_path."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    return tmp_path / "hf-cache"


# ---------------------------------------------------------------- files


def test_csv_keeps_text_and_null_cells(tmp_path):
    path = tmp_path / "seed.csv"
    path.write_text(
        'text,label\nI love it,1\n"Awful, just awful",0\n,1\n007,0\nNA,1\n', encoding="utf-8"
    )
    table = SeedDataset(file_path=str(path)).load()
    assert list(table.columns) == ["text", "label"]
    assert table["text"].tolist()[:2] == ["I love it", "Awful, just awful"]
    assert pd.isna(table.loc[2, "text"])  # an empty cell is null, for ingestion to reject
    assert table.loc[3, "text"] == "007"  # no numeric coercion: leading zeros survive
    assert table.loc[4, "text"] == "NA"  # only the empty string means null
    assert table["label"].tolist() == ["1", "0", "1", "0", "1"]


def test_tsv_is_tab_separated(tmp_path):
    path = tmp_path / "seed.tsv"
    path.write_text("text\tlabel\nhello, world\t1\nbye\t0\n", encoding="utf-8")
    table = SeedDataset(file_path=str(path)).load()
    assert table.to_dict("records") == [
        {"text": "hello, world", "label": "1"},
        {"text": "bye", "label": "0"},
    ]


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_jsonl(tmp_path, suffix):
    path = tmp_path / f"seed{suffix}"
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS), encoding="utf-8")
    table = SeedDataset(file_path=str(path)).load()
    assert table.to_dict("records") == ROWS


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_parquet(tmp_path, suffix):
    path = tmp_path / f"seed{suffix}"
    pd.DataFrame(ROWS).to_parquet(path)
    table = SeedDataset(file_path=str(path)).load()
    assert table.to_dict("records") == ROWS


def test_extension_is_case_insensitive(tmp_path):
    path = tmp_path / "SEED.CSV"
    path.write_text("text,label\nx,1\n", encoding="utf-8")
    assert SeedDataset(file_path=str(path)).load().to_dict("records") == [
        {"text": "x", "label": "1"}
    ]


def test_unsupported_extension(tmp_path):
    path = tmp_path / "seed.xlsx"
    path.write_bytes(b"whatever")
    assert (
        load_error(SeedDataset(file_path=str(path)))
        == f"seed file {path}: unsupported extension (use .csv, .tsv, .jsonl or .parquet)"
    )


def test_missing_file(tmp_path):
    path = tmp_path / "absent.csv"
    assert (
        load_error(SeedDataset(file_path=str(path)))
        == f"seed file {path}: not found (check source_data.dataset.csv.file_path)"
    )


@pytest.mark.parametrize(
    ("name", "content"), [("empty.csv", b""), ("blank.csv", b"\n  \n"), ("empty.jsonl", b"\n")]
)
def test_empty_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    assert load_error(SeedDataset(file_path=str(path))) == f"seed file {path}: the file is empty"


def test_invalid_jsonl(tmp_path):
    path = tmp_path / "seed.jsonl"
    path.write_text("{not json\n[1, 2]\n", encoding="utf-8")
    assert load_error(SeedDataset(file_path=str(path))).startswith(
        f"seed file {path}: not valid JSONL (no line is a JSON object (line 1: not valid JSON ("
    )


def test_a_bad_jsonl_line_is_kept_aside_with_its_line_number(tmp_path):
    path = tmp_path / "seed.jsonl"
    path.write_text(
        '{"text": "ok", "label": 1}\n\n{not json\n"a string"\n{"text": "b", "label": 0}\n',
        encoding="utf-8",
    )
    table = SeedDataset(file_path=str(path)).load()
    assert table["text"].tolist()[::3] == ["ok", "b"]
    assert table[SOURCE_LINE].tolist() == [1, 3, 4, 5]
    assert table[MALFORMED].tolist()[0] == table[MALFORMED].tolist()[3] == ""
    assert table.loc[1, MALFORMED].startswith("not valid JSON (")
    assert table.loc[2, MALFORMED] == "not a JSON object"
    assert table[RAW_RECORD].tolist() == ["", "{not json", '"a string"', ""]


def test_well_formed_csv_has_only_its_own_columns(tmp_path):
    path = tmp_path / "seed.csv"
    path.write_text('text,label\n"two\nlines, with a comma",1\n"say ""hi""",0\n', encoding="utf-8")
    table = SeedDataset(file_path=str(path)).load()
    assert table.to_dict("records") == [
        {"text": "two\nlines, with a comma", "label": "1"},
        {"text": 'say "hi"', "label": "0"},
    ]


def test_csv_stray_quote_ragged_line_and_broken_quote_are_kept_aside(tmp_path):
    path = tmp_path / "seed.csv"
    path.write_text(
        "row_id,text,label\n0,ok,0\n"
        '1,"Broken quote here,1\n2,Next row,0\n3,more",1\n'  # a stray quote swallows lines 4-5
        "4,last,0\n"
        '5,"para\nline two, with a comma",0\n'  # a real line break in a quoted text
        "6,x,1,extra\n"  # ragged
        '7,"hi" there,0\n'  # a quote closing mid-field
        "8,fine,1\n",
        encoding="utf-8",
    )
    table = SeedDataset(file_path=str(path)).load()
    bad = table[table[MALFORMED] != ""]
    assert bad[SOURCE_LINE].tolist() == [3, 9, 10]
    assert (
        bad[MALFORMED].tolist()[0].startswith("a quoted field opened on line 3 runs on over line 4")
    )
    assert bad[MALFORMED].tolist()[1] == "4 fields where the header has 3"
    assert bad[MALFORMED].tolist()[2].startswith("broken quoting (")
    assert bad[RAW_RECORD].tolist()[0] == '1,"Broken quote here,1\n2,Next row,0\n3,more",1\n'
    good = table[table[MALFORMED] == ""]
    assert good["row_id"].tolist() == ["0", "4", "5", "8"]
    assert good[SOURCE_LINE].tolist() == [2, 6, 7, 11]


def test_unterminated_quote_is_kept_aside(tmp_path):
    path = tmp_path / "seed.csv"
    path.write_text('text,label\na,1\nb,0\nc,1\n"never closed,0\nd,1\n', encoding="utf-8")
    table = SeedDataset(file_path=str(path)).load()
    assert table[MALFORMED].tolist()[:3] == ["", "", ""]
    assert table.loc[3, SOURCE_LINE] == 5
    assert table.loc[3, MALFORMED] != ""


def test_repeated_header_column_is_refused(tmp_path):
    path = tmp_path / "seed.csv"
    path.write_text("text,label,text\na,1,b\n", encoding="utf-8")
    assert load_error(SeedDataset(file_path=str(path))) == (
        f"seed file {path}: not valid CSV (the header names column(s) text more than once)"
    )


def test_corrupt_parquet(tmp_path):
    path = tmp_path / "seed.parquet"
    path.write_bytes(b"not a parquet file at all")
    assert load_error(SeedDataset(file_path=str(path))).startswith(
        f"seed file {path}: cannot be read ("
    )


def test_no_file_path_configured():
    assert load_error(SeedDataset(file_path=None)).startswith("seed file : unsupported extension")


def test_seed_data_is_read_only(tmp_path):
    with pytest.raises(DatasetError, match="seed data is read-only"):
        SeedDataset(file_path=str(tmp_path / "x.csv")).save(pd.DataFrame(ROWS))


def test_jsonl_with_a_latin1_byte_keeps_the_row(tmp_path):
    path = tmp_path / "seed.jsonl"
    path.write_bytes(
        '{"text": "caf\xe9", "label": 1}\n{"text": "ok", "label": 0}\n'.encode("latin-1")
    )
    table = SeedDataset(file_path=str(path)).load()
    assert table["text"].tolist() == ["caf\udce9", "ok"]


def test_tsv_with_a_latin1_byte_keeps_the_row(tmp_path):
    path = tmp_path / "seed.tsv"
    path.write_bytes("text\tlabel\ncaf\xe9\t1\nok\t0\n".encode("latin-1"))
    table = SeedDataset(file_path=str(path)).load()
    assert table["text"].tolist() == ["caf\udce9", "ok"]


def test_describe_names_the_source(tmp_path):
    assert SeedDataset(file_path="s3://bucket/seed.csv")._describe() == {
        "source_type": "csv",
        "file_path": "s3://bucket/seed.csv",
    }
    described = SeedDataset(
        source_type="huggingface", hf_name="org/seed", hf_split="train"
    )._describe()
    assert described == {"source_type": "huggingface", "name": "org/seed", "split": "train"}


# ---------------------------------------------------------------- Hugging Face


@pytest.fixture
def saved_dataset_dict(tmp_path):
    folder = tmp_path / "hf_dict"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"text": ["a", "b"], "label": [1, 0]}),
            "validation": datasets.Dataset.from_dict({"text": ["c"], "label": [1]}),
        }
    ).save_to_disk(str(folder))
    return folder


def test_hf_save_to_disk_dataset_dict_split(saved_dataset_dict):
    table = SeedDataset(
        source_type="huggingface", hf_name=str(saved_dataset_dict), hf_split="validation"
    ).load()
    assert table.to_dict("records") == [{"text": "c", "label": 1}]
    table = SeedDataset(
        source_type="huggingface", hf_name=str(saved_dataset_dict), hf_split="train"
    ).load()
    assert table.to_dict("records") == [{"text": "a", "label": 1}, {"text": "b", "label": 0}]


def test_hf_save_to_disk_missing_split_lists_the_splits(saved_dataset_dict):
    message = load_error(
        SeedDataset(source_type="huggingface", hf_name=str(saved_dataset_dict), hf_split="test")
    )
    assert (
        message == f"seed dataset {saved_dataset_dict}: no split 'test' (splits: train, validation)"
    )


def test_hf_save_to_disk_single_dataset(tmp_path):
    folder = tmp_path / "hf_single"
    datasets.Dataset.from_dict({"text": ["x", "y"], "label": [0, 1]}).save_to_disk(str(folder))
    table = SeedDataset(source_type="huggingface", hf_name=str(folder), hf_split="train").load()
    assert table.to_dict("records") == [{"text": "x", "label": 0}, {"text": "y", "label": 1}]


def test_hf_parquet_file(tmp_path, hf_cache):
    path = tmp_path / "seed.parquet"
    pd.DataFrame(ROWS).to_parquet(path)
    table = SeedDataset(source_type="huggingface", hf_name=str(path), hf_split="train").load()
    assert table.to_dict("records") == ROWS


def test_hf_missing_local_folder(tmp_path):
    folder = tmp_path / "nowhere"
    message = load_error(
        SeedDataset(source_type="huggingface", hf_name=str(folder), hf_split="train")
    )
    assert message.startswith(f"seed dataset {folder}: not found (")


def test_hf_hub_id_offline_fails_clearly(tmp_path, monkeypatch):
    # offline for the env (read by fresh clients) and for the already-imported constants
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.chdir(tmp_path)  # so "judgeforge-test/no-such-dataset" is not a local folder
    message = load_error(
        SeedDataset(
            source_type="huggingface", hf_name="judgeforge-test/no-such-dataset", hf_split="train"
        )
    )
    assert message.startswith(
        "seed dataset judgeforge-test/no-such-dataset (split train): cannot be loaded ("
    )
    assert "offline" in message.lower()
