"""The container image and the compose file: CI cannot run Docker here, so these check that
what they run is what the README and docs/deploy.md say (the entry command, the environment,
a non-root user, a health check, migrations as a command of their own)."""

import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
README = (ROOT / "README.md").read_text()
DEPLOY = (ROOT / "docs" / "deploy.md").read_text()


def _instruction(name):
    lines = re.findall(rf"^{name} (.+?)(?<!\\)$", DOCKERFILE.replace("\\\n", " "), flags=re.M)
    return lines[-1] if lines else None


def test_the_image_runs_gunicorn_project_wsgi_as_the_readme_says():
    """README: production is `gunicorn project.wsgi` with the environment it lists."""
    cmd = _instruction("CMD")
    assert cmd.startswith('["gunicorn", "project.wsgi"'), cmd
    assert "`gunicorn project.wsgi`" in README and "migrate" not in cmd


def test_the_image_runs_as_a_non_root_user_with_a_health_check():
    user = _instruction("USER")
    assert user and user not in ("root", "0")
    assert "/health/ready" in _instruction("HEALTHCHECK")
    assert _instruction("FROM").startswith("python:3.11-slim")


def test_every_variable_the_nodes_get_is_documented_in_the_readme():
    """The compose file's environment: each variable is one README's configuration names."""
    nodes = {name: s for name, s in COMPOSE["services"].items() if s.get("build")}
    assert {"node1", "node2", "migrate"} <= set(nodes)
    for name, service in nodes.items():
        for variable in service["environment"]:
            assert f"`{variable}`" in README, f"{name}: {variable} is not documented in README.md"


def test_migrations_are_a_step_of_their_own_before_the_nodes_start():
    services = COMPOSE["services"]
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    for node in ("node1", "node2"):
        assert "command" not in services[node]  # the image's own: gunicorn project.wsgi
        assert services[node]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_the_proxy_is_the_only_trusted_forwarder():
    """OIDC_TRUSTED_PROXIES names the proxy's fixed address, so clients' X-Forwarded-For is
    believed from it and from nobody else."""
    proxy = COMPOSE["services"]["proxy"]["networks"]["default"]["ipv4_address"]
    assert COMPOSE["services"]["node1"]["environment"]["OIDC_TRUSTED_PROXIES"] == proxy


def test_the_deploy_guide_shows_the_commands_the_files_run():
    assert "docker compose up" in DEPLOY and "python manage.py migrate" in DEPLOY
    assert "docs/deploy.md" in README
