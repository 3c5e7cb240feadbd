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
from ruamel.yaml.nodes import MappingNode, SequenceNode

from judgeforge.config.problems import ConfigError, Problem


def read_yaml_file(path: str | Path) -> Any:
    """Return the contents of a YAML file, or raise ConfigError with one line saying what is wrong."""
    path = Path(path)
    text = _read_text(path)
    if not text.strip():
        raise ConfigError([Problem(str(path), "(file)", "config file is empty")], str(path))
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except DuplicateKeyError:
        raise ConfigError(
            [
                Problem(
                    f"{path}:line {second}",
                    "(yaml)",
                    f"key {key!r} is written twice (first at line {first}): keep one",
                )
                for key, first, second in repeated_keys(text)
            ],
            str(path),
        ) from None
    except YAMLError as error:
        mark = error.problem_mark if isinstance(error, MarkedYAMLError) else None
        where = f"line {mark.line + 1}" if mark else "(file)"
        problem = error.problem if isinstance(error, MarkedYAMLError) and error.problem else error
        raise ConfigError(
            [Problem(f"{path}:{where}", "(yaml)", f"not valid YAML: {problem}")], str(path)
        ) from None
    if data is None:
        raise ConfigError(
            [Problem(str(path), "(file)", "config file holds only comments: it is empty")],
            str(path),
        )
    return data


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [Problem(str(path), "(file)", "config file not found")], str(path)
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            [
                Problem(
                    str(path),
                    "(file)",
                    "is a folder, not a config file: pass the run YAML inside it",
                )
            ],
            str(path),
        ) from None
    except PermissionError:
        raise ConfigError(
            [Problem(str(path), "(file)", "config file cannot be read (permission denied)")],
            str(path),
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(
            [Problem(str(path), "(file)", "config file is not UTF-8 text")], str(path)
        ) from None


def repeated_keys(text: str) -> list[tuple[str, int, int]]:
    """Return (key, first line, repeated line) for every key written twice in one mapping of a YAML text."""
    found = []
    nodes = [YAML(typ="safe", pure=True).compose(text)]
    while nodes:
        node = nodes.pop()
        if isinstance(node, MappingNode):
            first_line: dict[str, int] = {}
            for key, value in node.value:
                line = key.start_mark.line + 1
                if str(key.value) in first_line:
                    found.append((str(key.value), first_line[str(key.value)], line))
                first_line.setdefault(str(key.value), line)
                nodes.append(value)
        elif isinstance(node, SequenceNode):
            nodes.extend(node.value)
    return sorted(found, key=lambda item: item[2])
