"""Upgrading is safe: migrations are linear and reversible (issue "reusable app").

Runs against a scratch database of the same engine as the suite: a temporary SQLite file, or
a throw-away PostgreSQL database beside the test one when DATABASE_URL is PostgreSQL.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db.migrations.loader import MigrationLoader

REPO = Path(__file__).resolve().parent.parent
APPS = ("oidc_provider", "console")


@pytest.mark.parametrize("app", APPS)
def test_each_app_has_one_linear_history(app):
    loader = MigrationLoader(None, ignore_no_migrations=True)
    nodes = sorted(k for k in loader.graph.nodes if k[0] == app)
    assert loader.graph.leaf_nodes(app) == [nodes[-1]], "one leaf, no branches to merge"
    for key in nodes:
        same_app_parents = [p for p in loader.graph.node_map[key].parents if p.key[0] == app]
        assert len(same_app_parents) <= 1, f"{key} merges branches"


def test_no_model_change_lacks_a_migration():
    result = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run", *APPS],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_migrate_from_first_to_last_back_to_zero_and_forward_again(scratch_database_url, tmp_path):
    env = {**os.environ, "DATABASE_URL": scratch_database_url, "DJANGO_DATA_DIR": str(tmp_path)}

    def manage(*args):
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
        return result.stdout

    manage("migrate", "oidc_provider", "0001", "-v0")
    manage("migrate", "-v0")
    manage("oidc_app", "create", "--name", "Survivor", "--type", "service", "--json")
    manage("migrate", "console", "zero", "-v0")
    manage("migrate", "oauth2_provider", "zero", "-v0")
    manage("migrate", "oidc_provider", "zero", "-v0")
    manage("migrate", "-v0")
    assert "Survivor" not in manage("oidc_app", "list")  # tables were really dropped and rebuilt
    assert "recommended" in manage("oidc_policy", "show")  # the seeded policy is back
