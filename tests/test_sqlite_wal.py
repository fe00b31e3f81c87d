"""A new SQLite file switches to WAL even when SQLite refuses the first tries (as it does at
once to one of two connections switching together): a refused switch is retried."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from app.core.db import _use_wal


def _reader_holding(path) -> sqlite3.Connection:
    reader = sqlite3.connect(path, check_same_thread=False)
    reader.execute("CREATE TABLE t (x)")
    reader.commit()
    reader.execute("BEGIN")
    reader.execute("SELECT * FROM t").fetchall()
    return reader


def test_refused_wal_switch_is_retried(tmp_path):
    reader = _reader_holding(tmp_path / "a.db")
    conn = sqlite3.connect(tmp_path / "a.db", timeout=0.05)  # each try refused quickly
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _use_wal(conn.cursor(), attempts=1)
    threading.Timer(0.3, reader.rollback).start()
    _use_wal(conn.cursor())
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_in_memory_database_keeps_its_journal(tmp_path):
    conn = sqlite3.connect(":memory:")
    _use_wal(conn.cursor())  # returns: an in-memory database cannot use WAL
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "memory"
