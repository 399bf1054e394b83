"""Imported by the testbed's Glance workers (uwsgi `import`): SQLite transactions that do not fail at once.

Glance writes from request threads, from its task threads (imports, location hashing) and, on this
testbed, from two processes, all on one SQLite file. pysqlite opens a transaction lazily (BEGIN DEFERRED):
a transaction that has read and then wants to write while another connection writes gets SQLITE_BUSY at
once, without waiting ("database is locked": a DELETE right after an import, a location task whose first
status update fails silently in its thread and stays `pending`). With BEGIN IMMEDIATE each transaction
takes the write lock first, so a second one waits (busy_timeout) instead of failing: the recipe of
SQLAlchemy's pysqlite documentation ("Serializable isolation / Savepoints / Transactional DDL"), which oslo.db
follows with a plain BEGIN.
Test-bed only: a real Glance runs on MySQL or PostgreSQL.
"""

import sqlite3

from sqlalchemy import event
from sqlalchemy.engine import Engine

BUSY_TIMEOUT_MS = 60000


@event.listens_for(Engine, "connect")
def _connect(dbapi_connection, _record):
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.isolation_level = None  # pysqlite emits no BEGIN of its own
        dbapi_connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


@event.listens_for(Engine, "begin")
def _begin(conn):
    # oslo.db emits its own BEGIN (deferred) for SQLite unless conn.info says a transaction is
    # open: this listener, registered on the class before oslo.db makes its engine, runs first.
    if conn.dialect.name == "sqlite" and "in_transaction" not in conn.info:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        conn.info["in_transaction"] = True
