"""Content-addressed response cache in SQLite, committed in small batches so a killed run keeps its answers.

It also keeps the ledger of provider batches (async_config.batch): which batch carries which
request keys, so a killed run resumes the batch it submitted instead of paying for it twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    record TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS embeddings (
    key TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    vector BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    request_keys TEXT NOT NULL,
    open INTEGER NOT NULL,
    created_at REAL NOT NULL
);
"""
# SQLite's default limit on host parameters in one statement is 999 on old builds.
_LOOKUP_CHUNK = 900
# Answers wait at most this long, or for this many others, before their batch is committed.
COMMIT_WINDOW_SECONDS = 0.005
COMMIT_BATCH_ROWS = 256


def request_key(provider: str, model: str, endpoint: str, canonical_request: Any) -> str:
    """SHA-256 of who answers (provider, model, endpoint) and what is asked (canonical request)."""
    material = json.dumps(
        [provider, model, endpoint, canonical_request],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class ResponseCache:
    """Responses and embedding vectors keyed by request key, one committed row per answer."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: every INSERT is its own transaction, durable once it returns.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL under WAL survives a killed process (not a power cut) without an fsync per row.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(_SCHEMA)

    def get_responses(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Cached response records for those of `keys` that are present."""
        rows = self._select("SELECT key, record FROM responses WHERE key IN ({})", keys)
        return {key: json.loads(record) for key, record in rows}

    def put_responses(self, provider: str, model: str, records: Mapping[str, Mapping[str, Any]]) -> None:
        """Store response records by key, in one transaction."""
        now = time.time()
        rows = [
            (key, provider, model, json.dumps(record, ensure_ascii=False), now)
            for key, record in records.items()
        ]
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)", rows)

    def get_embeddings(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """Cached float32 vectors for those of `keys` that are present."""
        rows = self._select("SELECT key, vector FROM embeddings WHERE key IN ({})", keys)
        return {key: np.frombuffer(blob, dtype=np.float32) for key, blob in rows}

    def put_embeddings(
        self, provider: str, model: str, vectors: Mapping[str, np.ndarray]
    ) -> None:
        """Store a batch of vectors in one transaction."""
        now = time.time()
        rows = [
            (key, provider, model, np.asarray(v, dtype=np.float32).tobytes(), now)
            for key, v in vectors.items()
        ]
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?)", rows)

    def record_batch(
        self, batch_id: str, provider: str, model: str, endpoint: str, keys: Iterable[str]
    ) -> None:
        """Note a submitted provider batch and the request keys it carries (its custom_ids)."""
        row = (batch_id, provider, model, endpoint, json.dumps(list(keys)), 1, time.time())
        self._db.execute("INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?, ?, ?, ?)", row)

    def open_batches(self, provider: str, model: str, endpoint: str) -> dict[str, list[str]]:
        """Request keys of each submitted batch of this chat model whose answers are not collected."""
        rows = self._db.execute(
            "SELECT batch_id, request_keys FROM batches "
            "WHERE open = 1 AND provider = ? AND model = ? AND endpoint = ? ORDER BY created_at",
            (provider, model, endpoint),
        ).fetchall()
        return {batch_id: json.loads(keys) for batch_id, keys in rows}

    def close_batch(self, batch_id: str) -> None:
        """Mark a batch as done with: its answers are cached, or it ended without them."""
        self._db.execute("UPDATE batches SET open = 0 WHERE batch_id = ?", (batch_id,))

    def count_responses(self) -> int:
        """Number of cached responses."""
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        """Close the database handle."""
        self._db.close()

    def _select(self, template: str, keys: Iterable[str]) -> list[tuple[str, Any]]:
        """Run an `IN (...)` lookup over any number of keys, in chunks."""
        unique = list(dict.fromkeys(keys))
        rows: list[tuple[str, Any]] = []
        for start in range(0, len(unique), _LOOKUP_CHUNK):
            chunk = unique[start : start + _LOOKUP_CHUNK]
            query = template.format(",".join("?" * len(chunk)))
            rows.extend(self._db.execute(query, chunk).fetchall())
        return rows


class BatchWriter:
    """Answers committed together: a batch closes COMMIT_WINDOW_SECONDS after its first row.

    One SQLite commit costs ~45 us on the event loop whatever it holds, about 5 % of the loop at
    1,000+ answers/s when each answer is committed alone. `add` returns a future that is done
    once the row is durable; the engine keeps the request's concurrency slot until then, so
    the answers a killed process loses are still at most one per slot (the "in flight" ones).
    """

    def __init__(self, cache: ResponseCache, provider: str, model: str) -> None:
        self._cache = cache
        self._provider = provider
        self._model = model
        self._rows: dict[str, dict[str, Any]] = {}
        self._waiting: list[asyncio.Future[None]] = []
        self._timer: asyncio.TimerHandle | None = None

    def add(self, key: str, record: dict[str, Any]) -> asyncio.Future[None]:
        """Queue a row; the future is done when it is committed."""
        loop = asyncio.get_running_loop()
        if not self._rows:
            self._timer = loop.call_later(COMMIT_WINDOW_SECONDS, self.flush)
        self._rows[key] = record
        committed: asyncio.Future[None] = loop.create_future()
        self._waiting.append(committed)
        if len(self._rows) >= COMMIT_BATCH_ROWS:
            self.flush()
        return committed

    def flush(self) -> None:
        """Commit the queued rows now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._rows:
            return
        rows, self._rows = self._rows, {}
        waiting, self._waiting = self._waiting, []
        self._cache.put_responses(self._provider, self._model, rows)
        for committed in waiting:
            if not committed.done():
                committed.set_result(None)
