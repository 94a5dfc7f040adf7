"""Prometheus metrics (prometheus-client), at ``/metrics`` for the addresses or the token the
settings name and nobody else.

What is counted: tokens issued per grant and application, refused requests per reason,
sign-ins per outcome and lockouts (from the provider's signals and Django's), and per
endpoint the request latency and the time spent in database statements.

Under gunicorn, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before the server
starts (and empty it at each start): every worker then writes its counts there and a scrape
of any worker sums them all. Without it, each worker answers with its own counts only.
"""

import hmac
import ipaddress
import os
import threading
import time

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.backends.signals import connection_created
from django.http import HttpResponse, HttpResponseNotFound
from django.views.decorators.http import require_GET
from oauth2_provider.compat import login_not_required
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from . import signals, throttle
from .conf import oidc_settings
from .middleware import protocol_endpoint

TOKENS_ISSUED = Counter("oidc_tokens_issued", "Tokens issued, per grant and application.", ["grant", "client_id"])
REFUSALS = Counter("oidc_refusals", "Requests refused, per reason.", ["reason"])
LOGINS = Counter("oidc_logins", "Sign-ins, per outcome.", ["outcome"])
LOCKOUTS = Counter("oidc_lockouts", "Sign-ins refused by a lockout (too many failures).")
LATENCY = Histogram(
    "oidc_request_duration_seconds", "Time to answer a request, per endpoint.", ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
DATABASE_TIME = Counter("oidc_database_seconds", "Time spent in database statements, per endpoint.", ["endpoint"])

_database_seconds = threading.local()


class _Children(dict):
    """A metric's labelled children, kept: ``labels()`` validates and locks on every call,
    a measurable share of a request that does little else."""

    def __init__(self, metric):
        super().__init__()
        self.metric = metric

    def __missing__(self, key):
        child = self[key] = self.metric.labels(*key) if isinstance(key, tuple) else self.metric.labels(key)
        return child


_latency = _Children(LATENCY)
_database_time = _Children(DATABASE_TIME)
_tokens_issued = _Children(TOKENS_ISSUED)


def _timed_statement(execute, sql, params, many, context):
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        _database_seconds.value = getattr(_database_seconds, "value", 0.0) + time.perf_counter() - started


def _instrument(sender, connection, **kwargs):
    if _timed_statement not in connection.execute_wrappers:
        connection.execute_wrappers.append(_timed_statement)


class MetricsMiddleware:
    """First in MIDDLEWARE: times every request and its database statements, per endpoint
    (the URL name, so the label set stays small whatever paths are asked for)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        _database_seconds.value = 0.0
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        endpoint = (match.url_name or "other") if match is not None else "unmatched"
        _latency[endpoint].observe(time.perf_counter() - started)
        if _database_seconds.value:
            _database_time[endpoint].inc(_database_seconds.value)
        return response


# -- what the provider announces -----------------------------------------------------------


def _token_issued(sender, application=None, grant=None, **kwargs):
    _tokens_issued[(grant or "unknown", getattr(application, "client_id", "") or "")].inc()


def _refused(reason):
    def receiver(sender, **kwargs):
        REFUSALS.labels(kwargs.get("reason") or reason).inc()

    return receiver


def _client_authentication_failed(sender, throttled=False, **kwargs):
    REFUSALS.labels("client_auth_throttled" if throttled else "invalid_client").inc()


def connect():
    connection_created.connect(_instrument, dispatch_uid="oidc_provider.metrics.database")
    signals.token_issued.connect(_token_issued, dispatch_uid="oidc_provider.metrics.token_issued")
    signals.grant_refused.connect(_refused("grant_refused"), weak=False, dispatch_uid="oidc_provider.metrics.grant_refused")
    signals.code_replayed.connect(_refused("code_replayed"), weak=False, dispatch_uid="oidc_provider.metrics.code_replayed")
    signals.refresh_token_replayed.connect(_refused("refresh_token_replayed"), weak=False,
                                           dispatch_uid="oidc_provider.metrics.refresh_replayed")
    signals.client_authentication_failed.connect(_client_authentication_failed,
                                                 dispatch_uid="oidc_provider.metrics.client_auth")
    user_logged_in.connect(lambda **kwargs: LOGINS.labels("success").inc(), weak=False,
                           dispatch_uid="oidc_provider.metrics.login")
    user_login_failed.connect(lambda **kwargs: LOGINS.labels("failure").inc(), weak=False,
                              dispatch_uid="oidc_provider.metrics.login_failed")
    try:  # django-axes is optional
        from axes.signals import user_locked_out
    except ImportError:  # pragma: no cover
        return
    user_locked_out.connect(lambda **kwargs: LOCKOUTS.inc(), weak=False, dispatch_uid="oidc_provider.metrics.lockout")


# -- the scrape ---------------------------------------------------------------------------------


def _allowed(request):
    token = oidc_settings.METRICS_TOKEN
    if token:
        scheme, _, presented = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode()):
            return True
    networks = throttle.parse_networks(oidc_settings.METRICS_ALLOWED_NETWORKS)[0]
    address = throttle.client_address(request)
    if not networks or address is None:
        return False
    address = ipaddress.ip_address(address)
    return any(address in network for network in networks)


@protocol_endpoint
@login_not_required
@require_GET
def scrape(request):
    if not _allowed(request):
        return HttpResponseNotFound()  # to anyone else, there is nothing here
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest()
    response = HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
