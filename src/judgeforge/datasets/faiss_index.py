"""A Kedro dataset for a FAISS index, stored in FAISS's own format on any fsspec filesystem."""

from __future__ import annotations

from copy import deepcopy
from pathlib import PurePosixPath
from typing import Any

import faiss
import fsspec
import numpy as np
from kedro.io.core import AbstractDataset, get_filepath_str, get_protocol_and_path


class FaissIndexDataset(AbstractDataset[faiss.Index, faiss.Index]):
    """Saves and loads a `faiss.Index` (file readable by `faiss.read_index`), locally or on s3/gcs/…."""

    def __init__(
        self,
        *,
        filepath: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        protocol, path = get_protocol_and_path(filepath)
        filesystem_args = deepcopy(fs_args) or {}
        if protocol == "file":
            filesystem_args.setdefault("auto_mkdir", True)
        self._protocol = protocol
        self._filepath = PurePosixPath(path)
        self._fs = fsspec.filesystem(protocol, **(deepcopy(credentials) or {}), **filesystem_args)
        self.metadata = metadata

    def load(self) -> faiss.Index:
        """Return the stored index."""
        with self._fs.open(get_filepath_str(self._filepath, self._protocol), mode="rb") as stream:
            return faiss.deserialize_index(np.frombuffer(stream.read(), dtype=np.uint8))

    def save(self, data: faiss.Index) -> None:
        """Write the index."""
        with self._fs.open(get_filepath_str(self._filepath, self._protocol), mode="wb") as stream:
            stream.write(faiss.serialize_index(data).tobytes())
        self._fs.invalidate_cache(get_filepath_str(self._filepath, self._protocol))

    def _exists(self) -> bool:
        return self._fs.exists(get_filepath_str(self._filepath, self._protocol))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "protocol": self._protocol}
