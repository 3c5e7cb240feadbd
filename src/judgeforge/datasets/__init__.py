"""Kedro datasets of judgeforge: seed data from any source, Hugging Face DatasetDicts."""

from judgeforge.datasets.dataset_dict import DatasetDictDataset
from judgeforge.datasets.seed_data import SeedDataset

__all__ = ["DatasetDictDataset", "SeedDataset"]
