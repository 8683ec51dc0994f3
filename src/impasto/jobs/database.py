"""The job store's database: SQLite in the data folder (one machine, no server) or PostgreSQL (any
number of machines), behind one small interface, with numbered schema migrations run at start.

:class:`impasto.jobs.store.JobStore` writes its SQL once, with ``?`` placeholders and two
fragments that differ between the two: :attr:`Database.now`, the database's own clock in epoch
seconds (leases and heartbeats are never read from a worker's clock), and :attr:`Database.skip_locked`,
which lets concurrent claims on PostgreSQL pass over the rows another transaction holds
(``FOR UPDATE SKIP LOCKED``; SQLite serializes writers with ``BEGIN IMMEDIATE`` instead).

Choose one by URL (:func:`open_database`): ``postgresql://user@host/db`` (psycopg 3 and its
connection pool, the ``impasto[postgres]`` extra), or none for ``DATA/jobs.sqlite``. A URL's
password is never shown: :func:`redact` is what logs, ``/api/health`` and messages print.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError

MIGRATIONS: tuple[str, ...] = (
    # 1: the schema of impasto 0.2 (jobs and workers)
    """
    CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        recipe TEXT NOT NULL,
        content TEXT NOT NULL,
        styles TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        started DOUBLE PRECISION,
        finished DOUBLE PRECISION,
        progress DOUBLE PRECISION NOT NULL DEFAULT 0,
        message TEXT NOT NULL DEFAULT '',
        error TEXT,
        preview INTEGER NOT NULL DEFAULT 0,
        cancel INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        worker TEXT,
        resumed_from DOUBLE PRECISION,
        steps INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created);
    CREATE TABLE IF NOT EXISTS workers (
        name TEXT PRIMARY KEY,
        pid INTEGER NOT NULL,
        device TEXT,
        started DOUBLE PRECISION NOT NULL,
        heartbeat DOUBLE PRECISION NOT NULL,
        job TEXT
    );
    """,
    # 2: leases (a claim holds its job until lease_until, on the database's clock; heartbeats renew
    # it), the host of each worker and claim, for workers on several machines, and the result's
    # file name (each attempt writes its own)
    """
    ALTER TABLE jobs ADD COLUMN lease_until DOUBLE PRECISION;
    ALTER TABLE jobs ADD COLUMN host TEXT;
    ALTER TABLE jobs ADD COLUMN result TEXT;
    ALTER TABLE workers ADD COLUMN host TEXT;
    CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (status, lease_until);
    """,
)
"""The schema's migrations, in order: migration N brings a store at version N-1 to N. Never edit
one that has shipped; add the next."""
SCHEMA_VERSION = len(MIGRATIONS)
LEASE = 30.0
"""Seconds a worker's claim holds its job without a heartbeat (``--lease``): a dead worker's job
goes back to the queue this long after its last beat."""
QUEUE_ENV = "IMPASTO_QUEUE"
"""The environment variable that gives the queue's URL (``--queue``'s default): a URL with a
password reaches the workers this way, never on a command line that ``ps`` shows."""
BEAT_EVERY = 5.0
"""Seconds between a worker's heartbeats, each renewing its lease."""

LEGACY_COLUMNS = {"worker": "TEXT", "resumed_from": "REAL", "steps": "INTEGER NOT NULL DEFAULT 0"}
"""Columns that impasto versions before the numbered migrations added to an existing SQLite store
on open; a store at version 0 with a ``jobs`` table gets any it lacks before migration 1 counts
as done (the one place columns are looked at, for stores older than the version number)."""


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for logs, health and messages)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", str(url))


class Rows:
    """What :meth:`Database.transaction`'s ``execute`` returns: the rows as dicts, and the count of
    rows an UPDATE or DELETE touched."""

    def __init__(self, rows: list[dict[str, Any]], rowcount: int) -> None:
        self.rows, self.rowcount = rows, rowcount

    def one(self) -> dict[str, Any] | None:
        return self.rows[0] if self.rows else None


class Database:
    """One database of jobs. Subclasses give the connection and the dialect's fragments."""

    dialect = ""
    now = ""
    """SQL for the database's clock, in seconds since the epoch."""
    skip_locked = ""
    """What a claim's SELECT ends with, so that concurrent claims never wait on each other's row."""
    errors: tuple[type[BaseException], ...] = ()
    """What the database raises when it is down, full or restarting (the web answers 503)."""

    def transaction(self, *, write: bool = True) -> contextlib.AbstractContextManager[Any]:
        """A transaction: an object whose ``execute(sql, params)`` returns :class:`Rows`; committed
        when the block ends, rolled back when it raises."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def migrate(self) -> int:
        """Bring the schema to :data:`SCHEMA_VERSION`; returns the version it found."""
        raise NotImplementedError

    @staticmethod
    def _statements(script: str) -> list[str]:
        return [s.strip() for s in script.split(";") if s.strip()]


class SQLiteDatabase(Database):
    """``DATA/jobs.sqlite``: WAL mode, one connection per transaction, writers serialized by
    ``BEGIN IMMEDIATE``; the schema's version is SQLite's ``PRAGMA user_version``."""

    dialect = "sqlite"
    now = "((julianday('now') - 2440587.5) * 86400.0)"
    skip_locked = ""
    errors = (sqlite3.Error,)

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def describe(self) -> str:
        return f"SQLite ({self.path.name})"

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        con.row_factory = sqlite3.Row
        return con

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Any]:
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield _SQLiteCursor(con)
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        finally:
            con.close()

    def migrate(self) -> int:
        con = self._connect()
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait, then find it done
            found = int(con.execute("PRAGMA user_version").fetchone()[0])
            if found > SCHEMA_VERSION:
                con.execute("ROLLBACK")
                raise InputError(f"the job store {self.path} is at schema version {found}, newer than this "
                                 f"impasto's {SCHEMA_VERSION}: upgrade impasto")
            if found == 0:
                self._legacy(con)
            for version in range(found + 1, SCHEMA_VERSION + 1):
                for statement in self._statements(MIGRATIONS[version - 1]):
                    con.execute(statement.replace("DOUBLE PRECISION", "REAL"))
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            con.execute("COMMIT")
            return found
        finally:
            con.close()

    @staticmethod
    def _legacy(con: sqlite3.Connection) -> None:
        have = {row["name"] for row in con.execute("PRAGMA table_info(jobs)")}
        if have:
            for name, kind in LEGACY_COLUMNS.items():
                if name not in have:
                    con.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")


class _SQLiteCursor:
    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        cur = self.con.execute(sql, tuple(params))
        rows = [dict(r) for r in cur.fetchall()] if cur.description else []
        return Rows(rows, cur.rowcount)


class PostgresDatabase(Database):
    """A PostgreSQL database every machine of the service reaches (psycopg 3 with its connection
    pool). The schema's version is the ``impasto_schema`` table's; migrations run in one transaction
    under an advisory lock, so processes starting together migrate once. A connection that broke
    (the server restarted) is checked and replaced before it is lent again."""

    dialect = "postgresql"
    now = "EXTRACT(EPOCH FROM clock_timestamp())::double precision"
    skip_locked = "FOR UPDATE SKIP LOCKED"
    MIGRATION_LOCK = 0x1A7A5700  # the advisory lock's key: any number of impasto's own

    def __init__(self, url: str, *, max_connections: int = 8, timeout: float = 5.0) -> None:
        try:
            import psycopg
            from psycopg_pool import PoolTimeout
        except ImportError:
            raise InputError("a PostgreSQL queue needs psycopg 3 and its pool: pip install 'impasto[postgres]'",
                             fields=("queue",)) from None
        self.url, self.max_connections, self.timeout = url, max_connections, timeout
        self.errors = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)
        self._lock = threading.Lock()
        self._pool: Any = None

    def describe(self) -> str:
        return f"PostgreSQL ({redact(self.url)})"

    def _get_pool(self) -> Any:
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        with self._lock:
            if self._pool is None:
                self._pool = ConnectionPool(
                    self.url, min_size=1, max_size=self.max_connections, timeout=self.timeout, open=False,
                    kwargs={"row_factory": dict_row, "autocommit": True, "connect_timeout": 5},
                    check=ConnectionPool.check_connection, name="impasto")
                self._pool.open(wait=False)
            return self._pool

    def _drop_pool(self, pool: Any) -> None:
        """After a failure: the next transaction opens a fresh pool, which connects at once (the old
        pool's reconnect attempts back off, doubling without bound, and would lag a restarted server)."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
        with contextlib.suppress(Exception):
            pool.close(timeout=0)

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Any]:
        pool = self._get_pool()
        try:
            with pool.connection() as con, con.transaction():
                yield _PostgresCursor(con)
        except self.errors:
            self._drop_pool(pool)
            raise

    def migrate(self) -> int:
        with self.transaction() as tx:
            tx.execute("SELECT pg_advisory_xact_lock(?)", (self.MIGRATION_LOCK,))
            tx.execute("CREATE TABLE IF NOT EXISTS impasto_schema (version INTEGER NOT NULL)")
            row = tx.execute("SELECT version FROM impasto_schema").one()
            found = 0 if row is None else int(row["version"])
            if found > SCHEMA_VERSION:
                raise InputError(f"the job store is at schema version {found}, newer than this impasto's "
                                 f"{SCHEMA_VERSION}: upgrade impasto")
            for version in range(found + 1, SCHEMA_VERSION + 1):
                for statement in self._statements(MIGRATIONS[version - 1]):
                    tx.execute(statement)
            if row is None:
                tx.execute("INSERT INTO impasto_schema (version) VALUES (?)", (SCHEMA_VERSION,))
            else:
                tx.execute("UPDATE impasto_schema SET version = ?", (SCHEMA_VERSION,))
            return found

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


class _PostgresCursor:
    def __init__(self, con: Any) -> None:
        self.con = con

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        cur = self.con.execute(sql.replace("?", "%s"), tuple(params))
        rows = list(cur.fetchall()) if cur.description else []
        return Rows(rows, cur.rowcount)


def check_queue_url(url: str) -> None:
    """A ``--queue`` the service can use (a ``postgresql://`` URL), or one line saying so."""
    if str(url).split(":", 1)[0] not in ("postgresql", "postgres"):
        raise InputError(f"--queue takes a postgresql://user@host/db URL; got {redact(url)!r}", fields=("queue",))


def open_database(data: str | Path, queue: str | None = None) -> Database:
    """The job database: PostgreSQL at ``queue`` (a ``postgresql://`` URL), or SQLite in ``data``
    when ``queue`` is None or empty. Migrated to the current schema."""
    if queue:
        check_queue_url(queue)
        db: Database = PostgresDatabase(queue)
    else:
        db = SQLiteDatabase(Path(data) / "jobs.sqlite")
    db.migrate()
    return db
