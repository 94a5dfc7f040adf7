"""Files the project creates are readable by their owner only (issue 24, "Secrets at rest").

The SQLite database, its -wal and -shm files, the generated secret
key and the generated key-encryption key: each is made fresh in an empty data folder by the
commands a user runs, and each must be 0600. A database an older version left 0644 is
tightened the next time the project opens it.
"""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Opens the database, writes, and lists the data folder while the connection (and so the
# -wal and -shm files) is still open.
LIST_WHILE_OPEN = """
import json, os
from django.conf import settings
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("UPDATE oidc_provider_signingkey SET algorithm = algorithm")
folder = str(settings.DATA_DIR)
print(json.dumps({name: os.stat(os.path.join(folder, name)).st_mode for name in os.listdir(folder)}))
"""


def manage(data_dir, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SECRET_KEY", "OIDC_KEY_ENCRYPTION_KEY")}
    env["DJANGO_DATA_DIR"] = str(data_dir)
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def modes_while_open(data_dir):
    import json

    return {name: stat.S_IMODE(mode) for name, mode in json.loads(manage(data_dir, "shell", "-v0", "-c", LIST_WHILE_OPEN)).items() if stat.S_ISREG(mode)}


@pytest.fixture(scope="module")
def fresh_data_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    manage(data_dir, "migrate", "-v0")
    return data_dir


@pytest.mark.parametrize(
    "name",
    ["db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm", "secret_key", "key_encryption_key"],
)
def test_every_file_made_in_a_fresh_data_folder_is_owner_only(fresh_data_dir, name):
    modes = modes_while_open(fresh_data_dir)
    assert name in modes, sorted(modes)
    assert modes[name] == 0o600, f"{name} is {oct(modes[name])}"


def test_no_file_in_the_data_folder_is_readable_by_group_or_others(fresh_data_dir):
    modes = modes_while_open(fresh_data_dir)
    assert modes and all(mode & 0o077 == 0 for mode in modes.values()), {k: oct(v) for k, v in modes.items()}


def test_a_database_left_world_readable_is_tightened_when_it_is_opened(fresh_data_dir):
    """An upgrade from a version that made the file 0644 does not keep it so."""
    os.chmod(fresh_data_dir / "db.sqlite3", 0o644)
    modes = modes_while_open(fresh_data_dir)
    assert modes["db.sqlite3"] == 0o600


def test_the_generated_secrets_are_kept_across_starts(fresh_data_dir):
    """Generated once: the second start reads the same keys (sessions and signing keys survive)."""
    before = {name: (fresh_data_dir / name).read_text() for name in ("secret_key", "key_encryption_key")}
    manage(fresh_data_dir, "check", "-v0")
    assert {name: (fresh_data_dir / name).read_text() for name in before} == before
    assert not [p.name for p in fresh_data_dir.iterdir() if p.name.startswith(".")], "no partial file left behind"
