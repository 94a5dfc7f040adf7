"""The provider needs none of the ``server`` extra: a site without django-axes (and its other
packages) imports every provider module and passes its system checks."""

import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import importlib, pkgutil, sys

    BLOCKED = {"axes", "whitenoise", "dj_database_url", "gunicorn"}

    class Absent:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    sys.meta_path.insert(0, Absent())

    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="not-secret",
        INSTALLED_APPS=[
            "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
            "oidc_provider", "oauth2_provider",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        OAUTH2_PROVIDER_APPLICATION_MODEL="oidc_provider.Application",
        OIDC_PROVIDER={"ISSUER": "http://127.0.0.1:8000/oidc"},
        ROOT_URLCONF="oidc_provider.urls",
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}],
        AXES_COOLOFF_TIME=0.25,
        USE_TZ=True,
    )
    django.setup()

    import oidc_provider

    names = [m.name for m in pkgutil.walk_packages(oidc_provider.__path__, "oidc_provider.")]
    for name in names:
        importlib.import_module(name)
    assert not BLOCKED & {m.split(".")[0] for m in sys.modules}, "an optional extra was imported"

    from django.core.management import call_command

    call_command("check", fail_level="ERROR")

    from django.test import RequestFactory
    from oidc_provider.views.pages import locked_out

    page = locked_out(RequestFactory().post("/accounts/login/"), None, {"username": "ada"})
    assert page.status_code == 429 and "15" in page.content.decode() and "ada" in page.content.decode()
    assert not BLOCKED & {m.split(".")[0] for m in sys.modules}, "an optional extra was imported"
    print(f"imported {len(names)} modules")
    """
)


def test_every_provider_module_imports_without_the_server_extra():
    """django-axes is an optional extra: no provider module imports it, and the lockout page
    it is configured to show renders without it."""
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "imported" in result.stdout


def test_the_blocker_would_notice_an_import_of_axes():
    """The test above proves something: the same blocker makes importing axes fail."""
    script = SCRIPT.split("import django")[0] + "import axes\n"
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "No module named 'axes'" in result.stderr
