"""Health endpoints: /health/live and /health/ready, for load balancers and orchestrators."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

REPO = Path(__file__).resolve().parent.parent


def test_liveness_answers_without_authentication_or_a_database(client):
    """The process answers: 200, JSON, never cached."""
    response = client.get("/health/live")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert "no-store" in response["Cache-Control"]


def test_readiness_checks_the_database(client, db):
    """Ready: the database answers a query; each check named, nothing secret."""
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}


def test_readiness_checks_redis_when_a_cache_is_on_it(client, db, settings):
    """A Redis cache that does not answer makes the node unready (503), naming the check
    but not the address or the error."""
    settings.CACHES = {**settings.CACHES, "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "checks": {"database": "ok", "redis": "failed"}}
    assert b"127.0.0.1" not in response.content


def test_readiness_with_a_live_redis_is_ok(client, db, settings):
    """The Redis CI and deployments run (127.0.0.1:6379), when it is there."""
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    settings.CACHES = {**settings.CACHES, "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:6379/0"}}
    response = client.get("/health/ready")
    assert response.status_code == 200 and response.json()["checks"] == {"database": "ok", "redis": "ok"}


def test_a_node_whose_database_is_down_is_not_ready_and_still_live(tmp_path):
    """A database that cannot be reached: /health/ready 503 naming the database; /health/live 200."""
    script = (
        "import django, json; django.setup()\n"
        "from django.test import Client\n"
        "c = Client()\n"
        "r, l = c.get('/health/ready'), c.get('/health/live')\n"
        "print(json.dumps([r.status_code, r.json(), l.status_code]))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", "DJANGO_DATA_DIR": str(tmp_path),
           "DATABASE_URL": "postgres://nobody:secret-password@127.0.0.1:1/nothing"}
    env.pop("REDIS_URL", None)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    ready_status, ready_body, live_status = json.loads(result.stdout.strip().splitlines()[-1])
    assert ready_status == 503 and ready_body == {"status": "unavailable", "checks": {"database": "failed"}}
    assert live_status == 200
    assert "secret-password" not in result.stdout


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_health_endpoints_answer_get_only(db, method):
    """405 for other methods: they change nothing and take no input."""
    assert getattr(Client(), method)("/health/ready").status_code == 405
