"""docs/configuration.md carries the field tables generated from the models, up to date."""

from pathlib import Path

from judgeforge.config.reference import field_rows, update_document
from judgeforge.config.training import TrainingConfig

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_reference_is_up_to_date() -> None:
    text = DOCUMENT.read_text(encoding="utf-8")
    assert update_document(text) == text, "run: python -m judgeforge.config.reference"


def test_field_rows_reach_nested_leaves_with_defaults() -> None:
    rows = {path: (type_text, default) for path, type_text, default, _ in field_rows(TrainingConfig, "training")}
    assert rows["training.training.learning_rate_multiplier"] == ("float", "1.0")
    assert rows["training.output.object_store_bucket"][1] == '"${LUNA_OBJECT_STORE_BUCKET:-luna-ft}"'
