"""A new SQLite file switches to WAL even while another connection is reading it (a worker
starting beside the web process): SQLite refuses the switch at once instead of waiting."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from app.db import _use_wal


def _reader_holding(path) -> sqlite3.Connection:
    reader = sqlite3.connect(path, check_same_thread=False)
    reader.execute("CREATE TABLE t (x)")
    reader.commit()
    reader.execute("BEGIN")
    reader.execute("SELECT * FROM t").fetchall()
    return reader


def test_wal_switch_waits_for_a_reader_to_finish(tmp_path):
    reader = _reader_holding(tmp_path / "a.db")
    conn = sqlite3.connect(tmp_path / "a.db", timeout=30)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _use_wal(conn.cursor(), attempts=1)  # one try: what the busy timeout alone gives
    threading.Timer(0.3, reader.rollback).start()
    _use_wal(conn.cursor())
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_in_memory_database_keeps_its_journal(tmp_path):
    conn = sqlite3.connect(":memory:")
    _use_wal(conn.cursor())  # returns: an in-memory database cannot use WAL
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "memory"
