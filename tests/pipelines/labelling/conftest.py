"""Fixtures for labelling tests: a judge prompt metric, a generated DatasetDict, a loopback judge client."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import datasets
import pandas as pd
import pytest

from judgeforge.config.data_generation import (
    DatasetColumns,
    LabellingConfig,
    MetricConfig,
    OutputConfig,
)
from judgeforge.llm import build_llm_client
from tests.support.openai_server import OpenAIServer, Reply

JUDGE_PROMPT = "Decide whether this customer message is a complaint.\nMessage: {text}\nA complaint reports a problem the store must fix."
MESSAGE = re.compile(r"Message: (.*)\n")

# text -> (generator label, judge answer label): the fixed script of the agreement tests.
SCRIPT = {
    "The parcel arrived crushed": ("1", "1"),
    "Charged me twice": ("1", "1"),
    "Where is my refund, again": ("1", "0"),
    "Lovely service, thanks": ("0", "0"),
    "Do you ship to Peru?": ("0", "1"),
    "Great prices": ("0", "0"),
}
SEED_ROWS = {"My lamp came without a base": ("1", "1"), "Can I change my address?": ("0", "0")}


@pytest.fixture
def metric(metric: MetricConfig) -> MetricConfig:
    """Return the shared complaint metric, with the judge prompt labelling needs."""
    return metric.model_copy(update={"llmaj_source_prompt": JUDGE_PROMPT})


@pytest.fixture
def columns() -> DatasetColumns:
    return DatasetColumns(features=["text"], label="label")


@pytest.fixture
def output() -> OutputConfig:
    return OutputConfig(push_to_hub=False, dataset={"repo_name": "complaints"})


def labelling(**overrides) -> LabellingConfig:
    """Return labelling settings (enabled) for tests."""
    return LabellingConfig(**{"enabled": True, **overrides})


@pytest.fixture
def generated() -> datasets.DatasetDict:
    synthetic = [(f"syn-{i:06d}", text, gen, "synthetic") for i, (text, (gen, _)) in enumerate(SCRIPT.items())]
    seed = [(f"seed-{i}", text, gen, "seed") for i, (text, (gen, _)) in enumerate(SEED_ROWS.items())]
    train = pd.DataFrame(synthetic + seed, columns=["row_id", "text", "label", "source"])
    test = pd.DataFrame({"row_id": ["7", "8"], "text": ["Box was wet", "Thank you"], "label": ["1", "0"], "source": ["seed", "seed"]})
    return datasets.DatasetDict({"train": datasets.Dataset.from_pandas(train), "test": datasets.Dataset.from_pandas(test)})


def scripted_judge(request) -> Reply:
    """Answer a judge call with the label the script gives the message in the prompt."""
    text = MESSAGE.search(request.last_user_message).group(1)
    label = {**SCRIPT, **SEED_ROWS}[text][1]
    return Reply.json({"label": label, "rationale": f"because of: {text}"})


@pytest.fixture
def judge_client(openai_server: OpenAIServer, tmp_path: Path) -> Callable:
    """Return a function building a loopback judge client (one response cache per test)."""
    clients = []

    def build():
        client = build_llm_client(
            "openai", "judge-model", base_url=openai_server.base_url, max_concurrent_requests=4, max_retries=1,
            cache_path=tmp_path / "judge-cache.sqlite", show_progress=False,
        )
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()
