"""What a request leaves in the logs: an id carried by every record, and one line when done.

``RequestLogMiddleware`` (first in MIDDLEWARE) gives each request an id: the
``X-Request-ID`` a trusted proxy sent (``TRUSTED_PROXIES``), or a new random one. Anyone
else's header is ignored, so a client cannot make its requests look like another's. The id
is answered in ``X-Request-ID``, added to every log record made while the request is served
(``RequestIdFilter``), and kept in the audit log, so one id joins a proxy's access log, the
provider's logs and the audit trail. When done, the request is logged on
``oidc_provider.request`` at INFO: method, path (never the query string, which may hold a
code or a token), status and time.

``JsonFormatter`` writes each record as one JSON object per line, the form log collectors
read without a parsing rule.
"""

import logging
import re
import time
import os
from contextvars import ContextVar

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

HEADER = "X-Request-ID"
# What a proxy's id may look like: UUIDs, hex, and the usual trace id alphabets. Anything
# else (newlines, quotes, a kilobyte) would forge log lines or bloat every record.
_VALID_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")

_request_id = ContextVar("oidc_provider_request_id", default="")
access_log = logging.getLogger("oidc_provider.request")


def current_request_id():
    """The id of the request being served in this thread, or "" outside a request."""
    return _request_id.get()


class RequestLogMiddleware:
    def __init__(self, get_response):
        # Here, not at the top: Django configures logging (this module's filter and
        # formatter) before the apps, and throttle needs the models.
        from .throttle import client_address, from_trusted_proxy

        self.get_response = get_response
        self.client_address, self.from_trusted_proxy = client_address, from_trusted_proxy

    def _request_id(self, request):
        offered = request.META.get("HTTP_X_REQUEST_ID", "")
        if offered and _VALID_ID.fullmatch(offered) and self.from_trusted_proxy(request):
            return offered
        return os.urandom(16).hex()

    def __call__(self, request):
        # Kept until request_finished (forget()), not reset on the way out: Django logs a
        # response's 4xx or 5xx after the middleware has returned it.
        request.request_id = request_id = self._request_id(request)
        _request_id.set(request_id)
        started = time.perf_counter()
        response = self.get_response(request)
        response[HEADER] = request_id
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                # Escaped as Django escapes it in its own lines: a decoded newline in the path
                # would otherwise forge a log line in the text format.
                "%s %s %s", request.method, request.path.encode("unicode_escape").decode("ascii"), response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    "client": self.client_address(request),
                },
            )
        return response


def forget(**kwargs):
    """``request_finished`` receiver: what is logged from now on belongs to no request."""
    _request_id.set("")


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record (empty outside a request)."""

    def filter(self, record):
        record.request_id = _request_id.get()
        return True


class JsonFormatter(_JsonFormatter):
    """One JSON object per record: time (ISO 8601, UTC), level, logger, message, request id,
    and whatever ``extra`` the record carries but the request object Django adds, whose text
    is the whole URL: a query string can hold a token or a password."""

    def __init__(self, fmt="%(levelname)s %(name)s %(message)s %(request_id)s", **kwargs):
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", "time")
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, "request"])
        super().__init__(fmt, **kwargs)
