"""One spelling for label values, so config labels and data labels compare equal."""

from __future__ import annotations

import math
from typing import Any


def label_key(value: Any) -> str:
    """Return the canonical text of a label value: `1`, `1.0` and `"1"` all give "1"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isnan(value) and value.is_integer():
        return str(int(value))
    return str(value).strip().lower()
