"""Kedro datasets of judgeforge: seed data, Hugging Face DatasetDicts, LLM clients, trained judges."""

from judgeforge.datasets.dataset_dict import DatasetDictDataset
from judgeforge.datasets.judge_model_dataset import JudgeModelDataset
from judgeforge.datasets.llm_client import LLMClientDataset
from judgeforge.datasets.seed_data import SeedDataset

__all__ = ["DatasetDictDataset", "JudgeModelDataset", "LLMClientDataset", "SeedDataset"]
