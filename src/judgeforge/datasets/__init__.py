"""Kedro datasets of judgeforge: seed data, DatasetDicts, LLM and publishing clients, FAISS indexes, trained judges."""

from judgeforge.datasets.dataset_dict import DatasetDictDataset
from judgeforge.datasets.faiss_index import FaissIndexDataset
from judgeforge.datasets.judge_model_dataset import JudgeModelDataset
from judgeforge.datasets.llm_client import LLMClientDataset, LLMClientPoolDataset
from judgeforge.datasets.publishing import HubClientDataset, ObjectStoreDataset, OptionalJSONDataset
from judgeforge.datasets.seed_data import SeedDataset

__all__ = [
    "DatasetDictDataset",
    "FaissIndexDataset",
    "HubClientDataset",
    "JudgeModelDataset",
    "LLMClientDataset",
    "LLMClientPoolDataset",
    "ObjectStoreDataset",
    "OptionalJSONDataset",
    "SeedDataset",
]
