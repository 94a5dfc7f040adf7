"""What the hostile-input tests share: the state a refused request must leave as it was, and
how the fuzz authenticates to the console API."""

import json

from django.apps import apps

# Tables that record refusals by design, so a refused request may add to them: failed logins
# and lockouts (django-axes), the audit log, and sessions (a login page hands out a session).
RECORDS_OF_REFUSALS = {"axes", "sessions", "admin"}
RECORD_MODELS = {("console", "auditevent")}
WATCHED_APPS = ("auth", "oidc_provider", "oauth2_provider", "console", "authtoken", "knox")


def snapshot():
    """Every row of every table a request could change, refusal records apart."""
    state = {}
    for model in apps.get_models():
        meta = model._meta
        if meta.app_label not in WATCHED_APPS or (meta.app_label, meta.model_name) in RECORD_MODELS:
            continue
        rows = model._default_manager.order_by("pk").values_list(*[f.attname for f in meta.concrete_fields])
        state[meta.label] = [json.dumps(row, default=str) for row in rows]
    return state


def changes(before, after):
    """The tables whose rows differ, with a few of the rows that came or went."""
    found = {}
    for label in sorted(set(before) | set(after)):
        old, new = set(before.get(label, ())), set(after.get(label, ()))
        if old != new:
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
