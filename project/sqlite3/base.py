"""SQLite for several worker processes: writers queue on a file lock instead of polling.

SQLite has one writer at a time. A second worker that finds the write lock taken sleeps in
SQLite's busy handler, 1 ms, then 2, 5, 10… and retries, though the holder of the lock
needs well under a millisecond: under load one token request in five slept so, with the
CPU idle. Here each write transaction (and each write outside one) first takes an
exclusive ``flock`` on ``<database>.writers``, which the kernel hands to the next waiter
the moment it is released. The lock only orders our own writers; SQLite's locking, and its
busy timeout for any other process, still decide what is safe.

The database holds every secret's digest, the encrypted signing keys and the sessions: its
file is made readable by its owner only (0600) before SQLite opens it, and SQLite gives the
``-wal`` and ``-shm`` files it makes beside it the database file's mode.
"""

import fcntl
import os
from contextlib import contextmanager, nullcontext

from django.db.backends.sqlite3 import base

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class DatabaseWrapper(base.DatabaseWrapper):
    _writers = None  # the lock file's descriptor; None for an in-memory database

    def get_new_connection(self, conn_params):
        if not self.is_in_memory_db():
            _private_file(self.settings_dict["NAME"])
        connection = super().get_new_connection(conn_params)
        if self._writers is None and not self.is_in_memory_db():
            self._writers = os.open(f"{self.settings_dict['NAME']}.writers", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return connection

    def create_cursor(self, name=None):
        cursor = self.connection.cursor(factory=SerialisedWritesCursor)
        cursor.writers = self._writers
        return cursor

    def _start_transaction_under_autocommit(self):
        self._take_writers_lock()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_writers_lock()
            raise

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._release_writers_lock()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._release_writers_lock()

    def _close(self):
        try:
            return super()._close()
        finally:
            if self._writers is not None:
                os.close(self._writers)
                self._writers = None

    def _take_writers_lock(self):
        if self._writers is not None:
            fcntl.flock(self._writers, fcntl.LOCK_EX)

    def _release_writers_lock(self):
        if self._writers is not None:
            fcntl.flock(self._writers, fcntl.LOCK_UN)


def _private_file(path):
    """Create ``path`` empty with mode 0600 if it does not exist (an empty file is an empty
    SQLite database), and take group and other access away from one that has it."""
    path = os.fspath(path)
    if path.startswith("file:"):  # a URI: SQLite resolves it, and its options, itself
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        return
    except FileExistsError:
        pass
    except OSError:
        return  # e.g. a missing folder: let SQLite report it in its own words
    for name in (path, f"{path}-wal", f"{path}-shm", f"{path}.writers"):
        try:
            mode = os.stat(name).st_mode
            if mode & 0o077:
                os.chmod(name, mode & 0o700)
        except OSError:  # absent, or not ours to change
            pass


@contextmanager
def _holding(fd):
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


class SerialisedWritesCursor(base.SQLiteCursorWrapper):
    writers = None

    def execute(self, query, params=None):
        with self._queued(query):
            return super().execute(query, params)

    def executemany(self, query, param_list):
        with self._queued(query):
            return super().executemany(query, param_list)

    def _queued(self, query):
        # A write in autocommit mode is a transaction of its own: it queues like one.
        if self.writers is None or self.connection.in_transaction or not query.lstrip()[:7].upper().startswith(WRITES):
            return nullcontext()
        return _holding(self.writers)
