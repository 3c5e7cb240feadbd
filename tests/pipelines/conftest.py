"""Fixtures shared by pipeline tests."""

import pytest

from judgeforge.config.data_generation import MetricConfig


@pytest.fixture
def metric() -> MetricConfig:
    return MetricConfig(
        name="customer_complaint",
        description="Is the message a complaint?",
        type="binary",
        input_format="single",
        class_labels=[
            {"name": "complaint", "label": 1, "rubric": "reports a problem to fix"},
            {"name": "not_complaint", "label": 0, "rubric": "anything else"},
        ],
    )
