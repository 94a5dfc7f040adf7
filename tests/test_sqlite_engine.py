"""The project's SQLite engine (project.sqlite3): writers queue on <database>.writers.

Several gunicorn workers share one SQLite file; the engine makes each write transaction (and
each write in autocommit mode) hold an exclusive flock on ``<database>.writers``, so a second
writer waits in the kernel instead of sleeping in SQLite's busy handler. These tests hold the
lock from another file description, as another worker would, on a real database file.
"""

import fcntl
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections, transaction

ALIAS = "sqlite_engine"


@pytest.fixture
def database(tmp_path, django_db_blocker):
    path = tmp_path / "db.sqlite3"
    config = {"ENGINE": "project.sqlite3", "NAME": str(path),
              "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20}}
    connections.settings[ALIAS] = connections.configure_settings({"default": {}, ALIAS: config})[ALIAS]
    with django_db_blocker.unblock():
        with connections[ALIAS].cursor() as cursor:
            cursor.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        yield path
        connections[ALIAS].close()
    del connections[ALIAS]
    del connections.settings[ALIAS]


@pytest.fixture
def other_worker(database):
    """The lock file as another process opens it."""
    fd = os.open(f"{database}.writers", os.O_RDWR)
    yield fd
    os.close(fd)


def lock_is_free(fd):
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    fcntl.flock(fd, fcntl.LOCK_UN)
    return True


def insert(name):
    with connections[ALIAS].cursor() as cursor:
        cursor.execute("INSERT INTO item (name) VALUES (%s)", [name])


def names():
    with connections[ALIAS].cursor() as cursor:
        cursor.execute("SELECT name FROM item ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


def test_a_write_transaction_holds_the_lock_until_commit(other_worker):
    with transaction.atomic(using=ALIAS):
        insert("a")
        assert not lock_is_free(other_worker)
    assert lock_is_free(other_worker)
    assert names() == ["a"]


def test_a_rolled_back_transaction_releases_the_lock(other_worker):
    with pytest.raises(RuntimeError), transaction.atomic(using=ALIAS):
        insert("a")
        raise RuntimeError("undo")
    assert lock_is_free(other_worker)
    assert names() == []


def test_reads_take_no_lock(other_worker):
    fcntl.flock(other_worker, fcntl.LOCK_EX)
    try:
        assert names() == []  # would block if reads queued
    finally:
        fcntl.flock(other_worker, fcntl.LOCK_UN)


def test_a_write_outside_a_transaction_waits_for_the_lock(other_worker, django_db_blocker):
    fcntl.flock(other_worker, fcntl.LOCK_EX)
    done = threading.Event()

    def write():
        with django_db_blocker.unblock():
            try:
                insert("late")
            finally:
                connections[ALIAS].close()
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert not done.wait(0.5), "the write did not wait for the writers' lock"
    finally:
        fcntl.flock(other_worker, fcntl.LOCK_UN)
    assert done.wait(10)
    writer.join()
    assert names() == ["late"]
    assert lock_is_free(other_worker)


def test_concurrent_writers_all_land(database, django_db_blocker):
    def work(worker):
        with django_db_blocker.unblock():
            try:
                for i in range(25):
                    with transaction.atomic(using=ALIAS):
                        insert(f"{worker}-{i}-a")
                        insert(f"{worker}-{i}-b")
                    insert(f"{worker}-{i}-c")
            finally:
                connections[ALIAS].close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(work, range(6)))
    assert len(names()) == 6 * 25 * 3
