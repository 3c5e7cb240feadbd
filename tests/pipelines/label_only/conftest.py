"""The labelling fixtures, shared with the label-only tests."""

from tests.pipelines.labelling.conftest import judge_client, metric, output  # noqa: F401 -- fixtures
