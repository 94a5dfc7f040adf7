"""What the hostile-input tests share: the state a refused request must leave as it was, and
how the fuzz authenticates to the console API."""

import json

from django.apps import apps

# Tables that record refusals by design, so a refused request may add to them: failed logins
# and lockouts (django-axes), sessions (a login page hands out one), the brute-force counters
# (a failed client authentication is counted), the audit log and the refused requests. Django's
# permission rows are fixed by migrations.
UNWATCHED_MODELS = {
    ("console", "auditevent"), ("console", "refusal"), ("auth", "permission"), ("oidc_provider", "throttlecount"),
}
WATCHED_APPS = ("auth", "oidc_provider", "oauth2_provider", "console", "authtoken", "knox")


def _queries():
    from django.db import connection

    qn = connection.ops.quote_name
    queries = {}
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.proxy or meta.app_label not in WATCHED_APPS or (meta.app_label, meta.model_name) in UNWATCHED_MODELS:
            continue
        columns = ", ".join(qn(f.column) for f in meta.concrete_fields)
        queries[meta.label] = f"SELECT {columns} FROM {qn(meta.db_table)} ORDER BY {qn(meta.pk.column)}"
    return queries


def snapshot():
    """Every row of every table a request could change, refusal records apart (raw SQL:
    the fuzz takes one after every request)."""
    from django.db import connection

    state = {}
    with connection.cursor() as cursor:
        for label, sql in _queries().items():
            cursor.execute(sql)
            state[label] = cursor.fetchall()
    return state


def changes(before, after):
    """The tables whose rows differ, with a few of the rows that came or went."""
    found = {}
    for label in sorted(set(before) | set(after)):
        if before.get(label) == after.get(label):
            continue
        old, new = set(map(repr, before.get(label, ()))), set(map(repr, after.get(label, ())))
        found[label] = {"gone": sorted(old - new)[:3], "new": sorted(new - old)[:3]}
    return found


def console_api_credentials(user):
    """The request headers that authenticate ``user`` to the console API.

    A token from ``manage.py console_token create``: the command's ``token`` is sent as
    ``Authorization: Token <token>``. Kept in this one function so that a change in how the
    console API authenticates is made here only.
    """
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("console_token", "create", "--user", user.get_username(), "--json", stdout=out)
    return {"HTTP_AUTHORIZATION": f"Token {json.loads(out.getvalue())['token']}"}
