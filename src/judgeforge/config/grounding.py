"""Topics and documents that ground generation calls (judgeforge additions to `data_generation.diversity`).

A topic tree grown by the LLM (DeepFabric's `degree` and `depth`) or a topic list given by the
user; documents segmented by length and overlap (Oumi synth's `input_documents` with their
`segmentation_params`). The generation plan spreads the calls over the topics and segments
(judgeforge.pipelines.synthesis.plan).
"""

from __future__ import annotations

import glob
import importlib.util
import os
from enum import StrEnum
from pathlib import Path

from pydantic import field_validator
from tokenizers import Tokenizer

from judgeforge.config.base import (
    Broken,
    LocalPath,
    StrictModel,
    broken,
    judgeforge_field,
    model_rules,
)

# The parser each document type needs (module, PyPI package): all in the `documents` extra.
DOCUMENT_PARSERS = {
    ".txt": None,
    ".md": None,
    ".html": ("html2text", "html2text"),
    ".htm": ("html2text", "html2text"),
    ".pdf": ("pypdf", "pypdf"),
    ".docx": ("docx", "python-docx"),
}
DOCUMENTS_EXTRA_HINT = "pip install 'judgeforge[documents]'"


class SegmentationStrategy(StrEnum):
    """What segment_length and segment_overlap count."""

    CHARACTERS = "CHARACTERS"
    TOKENS = "TOKENS"


class SegmentationParams(StrictModel):
    id: str = judgeforge_field(
        "segment",
        min_length=1,
        description="Name of the segments: segment ids read `<file>#<id><n>`.",
    )
    segmentation_strategy: SegmentationStrategy = judgeforge_field(
        SegmentationStrategy.CHARACTERS,
        description="CHARACTERS or TOKENS (TOKENS needs `tokenizer`; Oumi's default, TOKENS "
        "with a Hub tokenizer, would need a download at run time).",
    )
    tokenizer: LocalPath | None = judgeforge_field(
        None,
        description="A Hugging Face `tokenizer.json` file (or the folder holding it), for TOKENS.",
    )
    segment_length: int = judgeforge_field(
        2048, ge=1, description="Characters or tokens per segment."
    )
    segment_overlap: int = judgeforge_field(
        0, ge=0, description="Characters or tokens a segment shares with the one before it."
    )

    @field_validator("tokenizer")
    @classmethod
    def _tokenizer_file(cls, path: str | None) -> str | None:
        if path is None:
            return path
        if not tokenizer_file(path).is_file():
            raise broken(f"no tokenizer.json at {path}")
        try:
            Tokenizer.from_file(str(tokenizer_file(path)))
        except Exception as error:  # noqa: BLE001 - whatever the file holds, it is not a tokenizer
            raise broken(f"cannot be read as a tokenizer: {error}") from None
        return path

    @model_rules
    def _rules(self) -> list[Broken]:
        """Return the length/overlap rule and the tokenizer TOKENS needs."""
        problems = []
        if self.segment_overlap >= self.segment_length:
            problems.append(
                Broken(
                    ("segment_overlap",),
                    self.segment_overlap,
                    f"must be shorter than segment_length ({self.segment_length})",
                )
            )
        if self.segmentation_strategy == SegmentationStrategy.TOKENS and self.tokenizer is None:
            problems.append(
                Broken(("tokenizer",), None, "required when segmentation_strategy is TOKENS")
            )
        return problems


class InputDocument(StrictModel):
    path: LocalPath = judgeforge_field(
        min_length=1,
        description="A file or glob of .txt, .md, .html, .pdf or .docx files.",
    )
    id: str | None = judgeforge_field(None, description="Name of the source (default: the path).")
    segmentation_params: SegmentationParams = judgeforge_field(
        default_factory=SegmentationParams, description="How the documents are cut into segments."
    )
    skip_unparseable: bool = judgeforge_field(
        False,
        description="A document that fails to parse (or holds no text) is reported by name and "
        "skipped; false: the run stops on it.",
    )

    @field_validator("path")
    @classmethod
    def _readable_files(cls, path: str) -> str:
        if "://" in path:
            raise broken("must be a local file or glob")
        files = document_files(path)
        if not files:
            raise broken(f"{path}: matches no file")
        for file in files:
            problem = document_problem(file)
            if problem:
                raise broken(f"{file}: {problem}")
        return path


class TopicTreeConfig(StrictModel):
    degree: int = judgeforge_field(
        3, ge=1, le=20, description="Subtopics the LLM writes under each topic."
    )
    depth: int = judgeforge_field(2, ge=1, le=5, description="Levels below the root.")
    topic_prompt: str | None = judgeforge_field(
        None,
        description="The root subject the tree grows from (default: the metric's name and "
        "description).",
    )


def document_files(pattern: str) -> list[str]:
    """Return the files a document path or glob names, sorted (folders left out)."""
    return sorted(
        path
        for path in glob.glob(os.path.expanduser(pattern), recursive=True)
        if Path(path).is_file()
    )


def document_problem(path: str) -> str:
    """Return why a document cannot be read before parsing (type, parser, access, size), or ""."""
    suffix = Path(path).suffix.lower()
    if suffix not in DOCUMENT_PARSERS:
        return f"{suffix or 'no suffix'} is not a supported document type ({', '.join(DOCUMENT_PARSERS)})"
    parser = DOCUMENT_PARSERS[suffix]
    if parser and not importable(parser[0]):
        return f"{suffix} documents need the package {parser[1]}: {DOCUMENTS_EXTRA_HINT}"
    if not os.access(path, os.R_OK):
        return "cannot be read (permission denied)"
    if os.path.getsize(path) == 0:
        return "is empty"
    return ""


def importable(module: str) -> bool:
    """Return whether a module can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:  # a module blocked in sys.modules has no spec
        return False


def tokenizer_file(path: str) -> Path:
    """Return the tokenizer.json a `tokenizer` setting names (the file, or inside the folder)."""
    location = Path(path).expanduser()
    return location / "tokenizer.json" if location.is_dir() else location
