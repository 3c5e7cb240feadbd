"""The FAISS index dataset round-trips flat and IVF indexes."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from judgeforge.datasets import FaissIndexDataset


def test_save_and_load_keep_the_index(tmp_path: Path) -> None:
    vectors = np.random.default_rng(0).standard_normal((300, 8)).astype(np.float32)
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(8), 8, 4, faiss.METRIC_INNER_PRODUCT)
    ivf.train(vectors)
    ivf.add(vectors)
    ivf.nprobe = 3
    dataset = FaissIndexDataset(filepath=str(tmp_path / "nested" / "holdout.faiss"))
    assert not dataset.exists()
    dataset.save(ivf)
    loaded = dataset.load()
    assert dataset.exists() and loaded.ntotal == 300 and loaded.nprobe == 3
    np.testing.assert_array_equal(loaded.search(vectors[:5], 3)[1], ivf.search(vectors[:5], 3)[1])
    assert faiss.read_index(str(tmp_path / "nested" / "holdout.faiss")).ntotal == 300


def test_an_empty_index_saves(tmp_path: Path) -> None:
    dataset = FaissIndexDataset(filepath=str(tmp_path / "empty.faiss"))
    dataset.save(faiss.IndexFlatIP(0))
    assert dataset.load().ntotal == 0
