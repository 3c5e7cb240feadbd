"""Reading a run YAML strictly: YAML 1.2 core rules, and a key written twice is an error.

PyYAML implements YAML 1.1, where `yes`/`no`/`on`/`off` are booleans (a label `yes` silently
becomes `True`) and a repeated key silently keeps the last value. ruamel.yaml's safe loader
follows YAML 1.2 (only `true`/`false` are booleans) and refuses duplicate keys with both line
numbers, so the file means what it says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from judgeforge.config.problems import ConfigError, Problem


def read_yaml_file(path: str | Path) -> Any:
    """Return the contents of a YAML file, or raise ConfigError with one line saying what is wrong."""
    path = Path(path)
    text = _read_text(path)
    if not text.strip():
        raise ConfigError([Problem(str(path), "(file)", "config file is empty")], str(path))
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except DuplicateKeyError as error:
        key = _quoted_key(error.problem or "")
        first = f" (first at line {error.context_mark.line + 1})" if error.context_mark else ""
        where = f"line {error.problem_mark.line + 1}" if error.problem_mark else "(file)"
        raise ConfigError(
            [Problem(f"{path}:{where}", "(yaml)", f"key {key} is written twice{first}: keep one")], str(path)
        ) from None
    except YAMLError as error:
        mark = error.problem_mark if isinstance(error, MarkedYAMLError) else None
        where = f"line {mark.line + 1}" if mark else "(file)"
        problem = error.problem if isinstance(error, MarkedYAMLError) and error.problem else error
        raise ConfigError([Problem(f"{path}:{where}", "(yaml)", f"not valid YAML: {problem}")], str(path)) from None
    if data is None:
        raise ConfigError([Problem(str(path), "(file)", "config file holds only comments: it is empty")], str(path))
    return data


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(str(path), "(file)", "config file not found")], str(path)) from None
    except IsADirectoryError:
        raise ConfigError([Problem(str(path), "(file)", "is a folder, not a config file: pass the run YAML inside it")], str(path)) from None
    except PermissionError:
        raise ConfigError([Problem(str(path), "(file)", "config file cannot be read (permission denied)")], str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError([Problem(str(path), "(file)", "config file is not UTF-8 text")], str(path)) from None


def _quoted_key(problem: str) -> str:
    # ruamel says: found duplicate key "total_examples" with value "4000000" (original value: "40")
    return problem.split('"')[1].join("''") if problem.count('"') >= 2 else "(a key)"
