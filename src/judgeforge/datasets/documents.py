"""A Kedro dataset of the documents that ground generation (`data_generation.diversity.input_documents`).

Each file is parsed by a well-kept library of the `documents` extra: pypdf (text of every
page), python-docx (paragraph by paragraph, as Oumi does) and html2text (HTML to plain text,
links and images left out); .txt and .md are read as UTF-8. A file that fails to parse does
not stop the load: its row carries the error, and the segmenting node fails or skips it as
the config says.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io.core import AbstractDataset, DatasetError

from judgeforge.config.grounding import DOCUMENT_PARSERS, DOCUMENTS_EXTRA_HINT, document_files
from judgeforge.errors import UserError

DOCUMENT_COLUMNS = ["source", "document", "text", "error"]


class DocumentsExtraMissing(UserError, ImportError):
    """A document type whose parser is not installed."""


class DocumentsDataset(AbstractDataset[None, pd.DataFrame]):
    """Loads the text of every file the globs name: columns source (glob index), document, text, error."""

    def __init__(
        self, *, paths: list[str] | None = None, metadata: dict[str, Any] | None = None
    ) -> None:
        self._paths = list(paths or [])
        self.metadata = metadata

    def load(self) -> pd.DataFrame:
        """Return one row per matched file, with its text or why it could not be parsed."""
        rows = []
        for source, pattern in enumerate(self._paths):
            for file in document_files(pattern):
                text, error = "", ""
                try:
                    text = read_document(file)
                except DocumentsExtraMissing:
                    raise
                except Exception as failure:  # noqa: BLE001 - any parser failure is the file's
                    error = f"{type(failure).__name__}: {failure}"
                rows.append({"source": source, "document": file, "text": text, "error": error})
        return pd.DataFrame(rows, columns=DOCUMENT_COLUMNS)

    def save(self, data: None) -> None:
        raise DatasetError("input documents are read, never written")

    def _describe(self) -> dict[str, Any]:
        return {"paths": self._paths}


def parser_module(suffix: str) -> Any:
    """Return the module that parses `suffix` documents, or raise DocumentsExtraMissing."""
    module, package = DOCUMENT_PARSERS[suffix]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DocumentsExtraMissing(
            f"{suffix} documents need the package {package}: {DOCUMENTS_EXTRA_HINT}"
        ) from None


def read_document(path: str) -> str:
    """Return the plain text of a .txt, .md, .html, .pdf or .docx file."""
    suffix = Path(path).suffix.lower()
    if suffix not in DOCUMENT_PARSERS:
        raise ValueError(f"{suffix or 'no suffix'} is not a supported document type")
    if DOCUMENT_PARSERS[suffix] is None:
        return Path(path).read_text(encoding="utf-8")
    if suffix == ".pdf":
        reader = parser_module(suffix).PdfReader(path)
        return "\n\n".join(page.extract_text() or "" for page in reader.pages)
    if suffix == ".docx":
        document = parser_module(suffix).Document(path)
        return "\n".join(paragraph.text for paragraph in document.paragraphs)
    converter = parser_module(suffix).HTML2Text()
    converter.ignore_links = converter.ignore_images = True
    converter.body_width = 0  # no hard line wraps inside paragraphs
    return converter.handle(Path(path).read_text(encoding="utf-8"))
