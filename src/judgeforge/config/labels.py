"""One spelling for label values, so config labels and data labels compare equal."""

from __future__ import annotations

import math
import re
from typing import Any

# "1.0" / "1." in a text file is the integer label 1, as 1.0 is in YAML.
_WHOLE_DECIMAL = re.compile(r"\+?(-?\d+)\.0*")


def label_key(value: Any) -> str:
    """Return the canonical text of a label value: `1`, `1.0`, `"1"` and `"1.0"` all give "1"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isnan(value) and value.is_integer():
        return str(int(value))
    text = str(value).strip().lower()
    whole = _WHOLE_DECIMAL.fullmatch(text)
    return whole.group(1) if whole else text
