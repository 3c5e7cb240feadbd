"""Fixtures for the training pipeline tests (tiny_llama_dir and tiny_bert_dir are in tests/conftest.py)."""

from tests.support.s3_server import s3_server  # noqa: F401 -- fixture
