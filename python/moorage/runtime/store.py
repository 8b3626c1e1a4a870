"""The metadata database: one SQLite file (WAL) under the root directory,
shared by every moorage process. Writers use short ``BEGIN IMMEDIATE``
transactions; a busy timeout makes concurrent CLIs wait instead of failing."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,             -- "sha256:<hex>" of the config blob
    config_digest TEXT NOT NULL,
    manifest_digest TEXT,
    index_digest TEXT,               -- the OCI index / manifest list the manifest was chosen from (load)
    created TEXT,                    -- the config's "created"
    size INTEGER NOT NULL DEFAULT 0, -- sum of uncompressed layer sizes
    layers TEXT NOT NULL,            -- JSON list of chain ids, bottom first
    added REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tags (
    name TEXT PRIMARY KEY,           -- normalized reference "docker.io/library/busybox:latest"
    image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE INDEX IF NOT EXISTS tags_image ON tags(image_id);
CREATE TABLE IF NOT EXISTS layers (   -- one row per (chain, driver): each driver unpacks its own copy
    chain_id TEXT NOT NULL,
    diff_id TEXT NOT NULL,
    parent TEXT,                     -- chain id of the parent layer
    digest TEXT,                     -- blob digest of the (compressed) layer
    size INTEGER NOT NULL,           -- uncompressed bytes
    driver TEXT NOT NULL,
    cache_id TEXT NOT NULL,          -- the driver's directory name
    created REAL NOT NULL,
    PRIMARY KEY (chain_id, driver)
);
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    image_id TEXT NOT NULL,
    image_name TEXT NOT NULL,
    created REAL NOT NULL,
    state TEXT NOT NULL,             -- created|running|paused|restarting|exited|removing|dead
    options TEXT NOT NULL,           -- JSON of CreateOptions
    config TEXT NOT NULL,            -- JSON: path, args, ... (inspect's Config/Path/Args)
    driver TEXT NOT NULL,
    runtime TEXT NOT NULL,
    pid INTEGER NOT NULL DEFAULT 0,
    monitor_pid INTEGER NOT NULL DEFAULT 0,
    started_at TEXT NOT NULL DEFAULT '',
    finished_at TEXT NOT NULL DEFAULT '',
    exit_code INTEGER NOT NULL DEFAULT 0,
    oom_killed INTEGER NOT NULL DEFAULT 0,
    restart_count INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT ''
);
"""


def _add_column(conn: sqlite3.Connection, table: str, column: str, decl: str) -> None:
    """Bring a database made by an older version up to SCHEMA: add ``column``
    when it is missing (another process may be adding it at the same time)."""
    if any(r[1] == column for r in conn.execute(f"PRAGMA table_info({table})")):
        return
    try:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
    except sqlite3.OperationalError as e:
        if "duplicate column" not in str(e):
            raise


class Store:
    """Thread-safe access to the metadata database (one connection per thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = self.conn
        conn.executescript(SCHEMA)
        _add_column(conn, "images", "index_digest", "TEXT")
        conn.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )

    @property
    def conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) != os.getpid():
            # Inherited through fork: SQLite forbids using (or closing) it here.
            conn = None
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``), committed on success."""
        conn = self.conn
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        return list(self.conn.execute(sql, args))

    def one(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        return self.conn.execute(sql, args).fetchone()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)
