"""`${VAR:-default}` environment references inside config strings."""

from __future__ import annotations

import os
import re

# ${VAR}, ${VAR:-default} (default when unset or empty) and ${VAR-default} (when unset)
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}")


def resolve_env_references(text: str) -> str:
    """Return `text` with every `${VAR:-default}` replaced; unset `${VAR}` raises ValueError."""

    def substitute(match: re.Match) -> str:
        name, operator, default = match.group(1), match.group(2), match.group(3)
        value = os.environ.get(name)
        if operator == ":-" and not value:
            return default
        if operator == "-" and value is None:
            return default
        if value is None:
            raise ValueError(f"environment variable {name} is not set and has no default")
        return value

    return _REFERENCE.sub(substitute, text)
