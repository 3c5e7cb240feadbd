"""The diagnostics pipeline through SequentialRunner, saving to the dataset types the catalog uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset
from kedro_datasets.matplotlib import MatplotlibDataset
from kedro_datasets.pandas import ParquetDataset

from judgeforge.config.data_generation import DataQualityMetricsConfig, DatasetColumns, MetricConfig
from judgeforge.config.diversity import DiversityConfig
from judgeforge.datasets import FaissIndexDataset
from judgeforge.pipelines.diagnostics import create_pipeline
from tests.diagnostics.fakes import TableEmbedder, cluster

DIMENSION = 16
TABLES = ("text_embeddings", "drift_scores", "drift_reference", "umap_coordinates")
PLOTS = ("umap_plot", "drift_histogram_plot", "drift_by_class_plot")
COLUMNS = DatasetColumns(features=["text"], label="label")
METRIC = MetricConfig(
    name="complaint",
    description="Is it a complaint?",
    type="binary",
    input_format="single",
    class_labels=[{"name": "yes", "label": 1, "rubric": "a complaint"}, {"name": "no", "label": 0, "rubric": "not one"}],
)


def _settings(**overrides: Any) -> DataQualityMetricsConfig:
    return DataQualityMetricsConfig.model_validate(
        {"umap": {"enabled": False}, "drift": {"k_neighbors": 10}} | overrides
    )


def _tables(holdout_labels: list[str], inside: int = 20, far: int = 5, holdout_rows: int = 120):
    """Return (train, holdout, embedder): holdout and `inside` synthetic rows share a cluster, `far` rows lie elsewhere."""
    rng = np.random.default_rng(0)
    home, elsewhere = np.eye(DIMENSION)[0], np.eye(DIMENSION)[1]
    holdout_vectors = cluster(rng, home, holdout_rows, spread=0.2)
    synthetic_vectors = np.vstack([cluster(rng, home, inside, spread=0.05), cluster(rng, elsewhere, far, spread=0.2)])
    holdout_texts = [f"real message {i}" for i in range(holdout_rows)]
    synthetic_texts = [f"made up message {i}" for i in range(inside + far)]
    train = pd.DataFrame(
        {
            "row_id": [f"syn-{i}" for i in range(inside + far)] + ["0"],
            "text": synthetic_texts + [holdout_texts[0]],
            "label": (["1", "0"] * (inside + far))[: inside + far] + ["1"],
            "source": ["synthetic"] * (inside + far) + ["seed"],
        }
    )
    holdout = pd.DataFrame(
        {"row_id": range(holdout_rows), "text": holdout_texts, "label": (holdout_labels * holdout_rows)[:holdout_rows]}
    )
    embedder = TableEmbedder(dict(zip(holdout_texts + synthetic_texts, np.vstack([holdout_vectors, synthetic_vectors]))))
    return train, holdout, embedder


DIVERSITY = DiversityConfig(sampled_attributes=[{"id": "tone", "possible_values": [{"id": "calm", "sample_rate": 0.5}, {"id": "odd"}]}])


def plan_values(train: pd.DataFrame) -> pd.DataFrame:
    """Return synthetic_examples for the synthetic train rows: the rows in the holdout's cluster are calm, the far ones odd."""
    synthetic = train[train.row_id.str.startswith("syn-")]
    far = synthetic.row_id.str.slice(4).astype(int) >= 20
    return synthetic.assign(attr_tone=np.where(far, "odd", "calm"), language="", persona_id="", generator="openai/test-model")


def _run(tmp_path: Path, train: pd.DataFrame, holdout: pd.DataFrame, embedder: TableEmbedder, settings) -> dict[str, Any]:
    """Run the pipeline; return every saved output, loaded back."""
    outputs = {name: ParquetDataset(filepath=str(tmp_path / f"{name}.parquet")) for name in TABLES}
    outputs |= {name: MatplotlibDataset(filepath=str(tmp_path / f"{name}.png")) for name in PLOTS}
    outputs["faiss_index"] = FaissIndexDataset(filepath=str(tmp_path / "faiss" / "holdout.faiss"))
    outputs["diagnostics_summary"] = JSONDataset(filepath=str(tmp_path / "summary.json"))
    inputs = {
        "train_table": MemoryDataset(train),
        "holdout_table": MemoryDataset(holdout),
        "embedding_client": MemoryDataset(embedder, copy_mode="assign"),
        "params:data_generation.metric": MemoryDataset(METRIC),
        "params:data_generation.source_data.dataset.columns": MemoryDataset(COLUMNS),
        "params:data_generation.data_quality_metrics": MemoryDataset(settings),
        "params:data_generation.diversity": MemoryDataset(DIVERSITY),
        "synthetic_examples": MemoryDataset(plan_values(train)),
    }
    SequentialRunner().run(create_pipeline(), DataCatalog(inputs | outputs))
    saved = {name: dataset.load() for name, dataset in outputs.items() if name not in PLOTS}
    return saved | {name: (tmp_path / f"{name}.png").stat().st_size for name in PLOTS}


def test_far_synthetic_rows_are_flagged_and_the_summary_reports_them(tmp_path: Path) -> None:
    train, holdout, embedder = _tables(["1", "0"])
    saved = _run(tmp_path, train, holdout, embedder, _settings())
    scores = saved["drift_scores"]
    assert list(scores.columns) == [
        "row_id", "text", "label", "score", "percentile", "flagged", "nearest_holdout_ids", "nearest_distance"
    ]
    assert set(scores.loc[scores["flagged"], "row_id"]) == {f"syn-{i}" for i in range(20, 25)}
    assert scores["score"].is_monotonic_decreasing
    assert all(len(ids) == 10 for ids in scores["nearest_holdout_ids"])
    assert len(saved["drift_reference"]) == 120 and saved["faiss_index"].ntotal == 120
    summary = saved["diagnostics_summary"]
    assert summary["status"] == "ok" and summary["notes"] == []
    assert summary["rows"] == {"synthetic": 25, "holdout": 120}
    assert summary["drift"]["flagged_rows"] == 5 and summary["drift"]["drift_rate"] == 0.2
    assert summary["drift"]["index"]["kind"] == "exact"
    assert set(summary["drift"]["drift_rate_by_class"]) == {"0", "1"}
    assert summary["class_balance"]["holdout"]["1"]["share"] == 0.5
    assert summary["near_duplicates"]["exact_text_matches"] == 0
    assert 0 < summary["diversity"]["synthetic"]["mean_pairwise_cosine_distance"] < 2
    assert summary["umap"] == {"status": "disabled"} and saved["umap_coordinates"].empty
    assert all(saved[name] > 0 for name in PLOTS)
    assert len(embedder.calls) == 1


def test_coverage_per_class_and_per_attribute_value_tells_the_far_rows_apart(tmp_path: Path) -> None:
    train, holdout, embedder = _tables(["1", "0"], far=10)
    coverage = _run(tmp_path, train, holdout, embedder, _settings())["diagnostics_summary"]["coverage"]
    assert coverage["status"] == "ok" and coverage["neighbours"] == 5
    calm, odd = coverage["per_value"]["attr_tone"]["calm"], coverage["per_value"]["attr_tone"]["odd"]
    assert (calm["rows"], odd["rows"]) == (20, 10)
    assert calm["precision"] == 1.0 and odd["precision"] == 0.0
    assert odd["coverage"] == 0.0 and calm["coverage"] > 0
    assert calm["distinct_1gram_ratio"] == pytest.approx(23 / 80)  # "made up message <i>": 3 shared words + 20 numbers
    assert coverage["overall"]["precision"] == pytest.approx(2 / 3)  # 20 of 30 synthetic rows lie among real ones
    assert set(coverage["per_class"]) == {"0", "1"}
    assert coverage["shares"]["attr_tone"] == {
        "calm": {"requested": 0.5, "realised": 0.6667, "difference": 0.1667},
        "odd": {"requested": 0.5, "realised": 0.3333, "difference": -0.1667},
    }
    assert "attr_tone" in coverage["per_value"] and "language" not in coverage["per_value"]


def test_umap_coordinates_and_plot_are_saved(tmp_path: Path) -> None:
    train, holdout, embedder = _tables(["1", "0"])
    saved = _run(tmp_path, train, holdout, embedder, _settings(umap={"enabled": True, "mode": "joint", "umap_neighbors": 8}))
    coordinates = saved["umap_coordinates"]
    assert len(coordinates) == 145 and coordinates[["x", "y"]].notna().all().all()
    assert saved["diagnostics_summary"]["umap"]["neighbors_used"] == 8


def test_disabled_diagnostics_embed_nothing_and_still_save_every_output(tmp_path: Path) -> None:
    train, holdout, embedder = _tables(["1", "0"])
    saved = _run(tmp_path, train, holdout, embedder, _settings(enabled=False, umap={"enabled": True}))
    assert embedder.calls == []
    assert all(saved[name].empty for name in TABLES)
    assert saved["faiss_index"].ntotal == 0
    assert saved["diagnostics_summary"]["status"] == "disabled"


def test_drift_off_keeps_the_rest(tmp_path: Path) -> None:
    train, holdout, embedder = _tables(["1", "0"])
    saved = _run(tmp_path, train, holdout, embedder, _settings(drift={"enabled": False}))
    summary = saved["diagnostics_summary"]
    assert saved["drift_scores"].empty and summary["drift"] == {"status": "disabled"}
    assert summary["near_duplicates"]["near_duplicates"] == "not computed: drift is disabled"
    assert len(saved["text_embeddings"]) == 145


def test_no_synthetic_rows_and_a_one_class_holdout_give_notes_not_errors(tmp_path: Path) -> None:
    train, holdout, embedder = _tables(["1"], inside=0, far=0)
    saved = _run(tmp_path, train, holdout, embedder, _settings())
    notes = saved["diagnostics_summary"]["notes"]
    assert "the synthetic set is empty: nothing to compare it with" in notes
    assert any(note.startswith("the holdout has a single class (1)") for note in notes)
    assert "drift skipped: there are no synthetic rows to score" in notes
    assert saved["drift_scores"].empty


def test_a_tiny_holdout_lowers_k_and_says_so(tmp_path: Path) -> None:
    train, holdout, embedder = _tables(["1", "0"], holdout_rows=6)
    saved = _run(tmp_path, train, holdout, embedder, _settings())
    drift = saved["diagnostics_summary"]["drift"]
    assert drift["k_neighbors_used"] == 5
    assert drift["notes"] == [
        "k_neighbors lowered from 10 to 5: the holdout has 6 rows and a holdout row's reference excludes itself"
    ]


def test_a_one_row_holdout_skips_drift(tmp_path: Path) -> None:
    train, holdout, embedder = _tables(["1", "0"], holdout_rows=1)
    saved = _run(tmp_path, train, holdout, embedder, _settings(umap={"enabled": True}))
    summary = saved["diagnostics_summary"]
    assert "drift skipped: drift needs at least 2 holdout rows (got 1)" in summary["notes"]
    assert summary["umap"]["status"] == "skipped"


def test_a_train_table_without_its_source_column_fails_in_one_line(tmp_path: Path) -> None:
    train, holdout, embedder = _tables(["1", "0"])
    with pytest.raises(ValueError, match=r"train_table lacks the column\(s\) \['source'\]"):
        _run(tmp_path, train.drop(columns="source"), holdout, embedder, _settings())


def test_summary_is_plain_json(tmp_path: Path) -> None:
    train, holdout, embedder = _tables(["1", "0"])
    _run(tmp_path, train, holdout, embedder, _settings())
    assert json.loads((tmp_path / "summary.json").read_text())["drift"]["threshold"] == 0.95
