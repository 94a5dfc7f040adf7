"""Health endpoints for load balancers and orchestrators: liveness (the process answers) and
readiness (it can reach what every request needs: the database, and Redis when a cache is
on it). No authentication and no secrets: an answer names each check and says ok or failed,
never an address or an error text. Both skip the middleware stack, so polling them every
second costs next to nothing."""

from django.core.cache import caches
from django.db import DatabaseError, connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from oauth2_provider.compat import login_not_required

from .middleware import protocol_endpoint

REDIS_BACKENDS = ("django.core.cache.backends.redis.RedisCache", "django_redis.cache.RedisCache")
PROBE_KEY = "oidc_provider.health"


def _database(alias):
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True
    except DatabaseError:
        return False


def _cache(alias):
    try:
        caches[alias].get(PROBE_KEY)
        return True
    except Exception:  # a cache backend's client raises its own errors (redis.ConnectionError...)
        return False


def checks():
    """{check name: passed} for every database and every Redis cache the site configures."""
    from django.conf import settings

    found = {f"database:{alias}" if alias != "default" else "database": _database(alias) for alias in connections}
    for alias, config in settings.CACHES.items():
        if config.get("BACKEND") in REDIS_BACKENDS:
            found["redis" if alias == "default" else f"redis:{alias}"] = _cache(alias)
    return found


def _answer(body, status):
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response


@protocol_endpoint
@login_not_required
@never_cache
@require_GET
def live(request):
    return _answer({"status": "ok"}, 200)


@protocol_endpoint
@login_not_required
@never_cache
@require_GET
def ready(request):
    results = checks()
    passed = all(results.values())
    return _answer({"status": "ok" if passed else "unavailable",
                    "checks": {name: "ok" if ok else "failed" for name, ok in results.items()}},
                   200 if passed else 503)
