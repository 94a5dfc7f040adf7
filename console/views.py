"""The console's own admin pages, served through the admin site (``ModelAdmin.get_urls``).

Each view takes the ``ModelAdmin`` it belongs to, for permissions and the admin's context;
``console.admin`` wraps them with ``admin_site.admin_view`` (staff login, CSRF, no cache).

Secrets shown once (a new client secret, a new SK) pass from the request that made them to
the page that shows them encrypted: the session holds only ciphertext, and its key travels
in a short-lived cookie of its own (HttpOnly, SameSite=Strict, scoped to the admin), so
neither the session table nor the browser alone holds the secret. The page that shows them
pops the ciphertext and drops the cookie: a reload finds nothing.
"""

import csv
import json
from datetime import datetime, time
from urllib.parse import urlencode

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.contrib import messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model, revoke_access_token

from oidc_provider import access_keys, policy
from oidc_provider.conf import oidc_settings
from oidc_provider.models import AccessKey, Application, Consent, GrantPolicy

from . import audit, charts, flows
from .forms import ApplicationForm, FlowCreateForm
from .permissions import allowed, require

SECRET_SESSION_KEY = "console.shown_once.client_secret"
KEYS_SESSION_KEY = "console.shown_once.access_keys"
SHOWN_ONCE_COOKIE = "console_shown_once"
# Long enough to open the page the redirect points to; a secret not shown by then is lost
# (regenerate it or rotate the pair).
SHOWN_ONCE_SECONDS = 300


def admin_context(request, model_admin, title, **extra):
    opts = model_admin.model._meta
    return {
        **model_admin.admin_site.each_context(request),
        "opts": opts,
        "app_label": opts.app_label,
        "title": title,
        "has_view_permission": model_admin.has_view_permission(request),
        **extra,
    }


def admin_url(name, *args, query=None):
    url = reverse(f"admin:{name}", args=args)
    return f"{url}?{urlencode(query)}" if query else url


def render_diagrams(application_type, grants):
    """[(diagram, svg markup)] for an application's grants."""
    return [(d, charts.sequence_diagram(d)) for d in flows.diagrams_for(application_type, grants)]


# -- secrets passed once, encrypted, from the request that made them to the page that shows them --


def _shown_once_fernet(request):
    """The cipher of this browser's pending secrets: the key in its cookie, or a new one."""
    key = getattr(request, "_console_shown_once_key", None) or request.COOKIES.get(SHOWN_ONCE_COOKIE, "")
    try:
        fernet = Fernet(key)
    except (ValueError, TypeError):
        key = Fernet.generate_key().decode()
        fernet = Fernet(key)
    request._console_shown_once_key = key
    return fernet


def _seal(request, value):
    return _shown_once_fernet(request).encrypt(json.dumps(value).encode()).decode()


def _open(request, token):
    key = request.COOKIES.get(SHOWN_ONCE_COOKIE, "")
    if not isinstance(token, str) or not key:
        return None
    try:
        return json.loads(Fernet(key).decrypt(token.encode(), ttl=SHOWN_ONCE_SECONDS))
    except (InvalidToken, ValueError, TypeError):
        return None


def shown_once(request, response):
    """Give ``response`` the cookie that opens what this request stashed, or drop the cookie
    once nothing is pending; returns ``response``."""
    key = getattr(request, "_console_shown_once_key", None)
    path = reverse("admin:index")
    if key is not None:
        response.set_cookie(
            SHOWN_ONCE_COOKIE, key, max_age=SHOWN_ONCE_SECONDS, path=path,
            secure=settings.SESSION_COOKIE_SECURE, httponly=True, samesite="Strict",
        )
    elif SHOWN_ONCE_COOKIE in request.COOKIES and not (
        request.session.get(SECRET_SESSION_KEY) or request.session.get(KEYS_SESSION_KEY)
    ):
        response.delete_cookie(SHOWN_ONCE_COOKIE, path=path, samesite="Strict")
    response["Cache-Control"] = "no-store"
    return response


def shown_once_redirect(request, url):
    """The redirect to the page that shows what this request stashed."""
    return shown_once(request, redirect(url))


def stash_client_secret(request, application, secret):
    shown = request.session.get(SECRET_SESSION_KEY, {})
    shown[str(application.pk)] = _seal(request, {"client_id": application.client_id, "secret": secret})
    request.session[SECRET_SESSION_KEY] = shown


def pop_client_secret(request, application):
    shown = request.session.get(SECRET_SESSION_KEY, {})
    entry = _open(request, shown.pop(str(application.pk), None))
    if shown:
        request.session[SECRET_SESSION_KEY] = shown
    else:
        request.session.pop(SECRET_SESSION_KEY, None)
    request.session.modified = True
    if isinstance(entry, dict) and entry.get("client_id") == application.client_id and not application.is_public:
        return entry.get("secret")
    return None


def stash_access_keys(request, pairs):
    """Keep (AccessKey, sk) pairs, sealed, for the one page that shows them."""
    request.session[KEYS_SESSION_KEY] = _seal(
        request, [{"key_id": key.pk, "access_key": key.access_key, "secret_key": sk} for key, sk in pairs]
    )


def pop_access_keys(request):
    shown = _open(request, request.session.pop(KEYS_SESSION_KEY, None))
    return [e for e in shown if isinstance(e, dict)] if isinstance(shown, list) else []


# -- applications: the flow chooser, the page after creating, secrets, tokens ------------------


def flow_chooser(request, model_admin):
    """'Which flow do I need?': the docs' questions, one after another, then the answer.

    The questions are a GET form (answers in the query, nothing changes); the last step is a
    POST form (with CSRF) that creates the application from the answer.
    """
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    source = request.POST if request.method == "POST" else request.GET
    answers = flows.clean_answers(source)
    recommendation = flows.recommend(answers)
    create_form = None
    if recommendation is not None:
        if request.method == "POST":
            create_form = FlowCreateForm(request.POST, recommendation=recommendation)
            if create_form.is_valid():
                app_form = ApplicationForm(data=create_form.application_data())
                if app_form.is_valid():
                    app = app_form.save()
                    model_admin.log_addition(request, app, [{"added": {}}])
                    audit.record(
                        audit.APPLICATION_CREATED,
                        request=request,
                        target=app,
                        application_type=app.application_type,
                        grant_types=list(app.grant_types),
                        via="flow_chooser",
                    )
                    if app.plaintext_secret:
                        stash_client_secret(request, app, app.plaintext_secret)
                    return shown_once_redirect(request, admin_url("oidc_provider_application_credentials", app.pk))
                for field, errors in app_form.errors.items():
                    target = field if field in create_form.fields else None
                    for error in errors:
                        create_form.add_error(target, error)
        else:
            create_form = FlowCreateForm(recommendation=recommendation)
        if request.method == "POST" and not create_form.is_valid():
            status = 400
        else:
            status = 200
    elif request.method == "POST":
        status = 400
    else:
        status = 200

    current = policy.current_policy()
    questions = []
    for question in flows.asked_questions(answers):
        questions.append({"question": question, "answer": answers.get(question.key)})
    context = admin_context(
        request,
        model_admin,
        _("Which flow do I need?"),
        questions=questions,
        answers=answers,
        recommendation=recommendation,
        create_form=create_form,
    )
    if recommendation is not None:
        context.update(
            type_label=dict(policy.APPLICATION_TYPE_CHOICES)[recommendation.application_type],
            grant_rows=[
                {
                    "grant": g,
                    "label": dict(policy.GRANT_CHOICES)[g],
                    "state": current[(recommendation.application_type, g)],
                }
                for g in recommendation.grants
            ],
            forbidden_now=[g for g in recommendation.grants if current[(recommendation.application_type, g)] == policy.FORBIDDEN],
            diagrams=render_diagrams(recommendation.application_type, recommendation.grants),
        )
    return TemplateResponse(request, "console/admin/flow_chooser.html", context, status=status)


def application_credentials(request, model_admin, object_id):
    """What a developer needs to connect the application; its secret only the first time."""
    app = get_object_or_404(Application, pk=object_id)
    if not model_admin.has_view_permission(request, app):
        raise PermissionDenied
    secret = pop_client_secret(request, app)
    ep = flows.endpoints(oidc_settings.issuer)
    scope = None
    if app.application_type == policy.SERVICE:
        account = getattr(app, "access_account", None)
        scope = " ".join(account.scopes) if account is not None and account.scopes else "read"
    snippets = flows.snippets(
        issuer=oidc_settings.issuer,
        client_id=app.client_id,
        application_type=app.application_type,
        grants=app.grant_types,
        redirect_uris=app.redirect_uris.split(),
        secret=secret,
        scope=scope,
    )
    context = admin_context(
        request,
        model_admin,
        _("Connect %(name)s") % {"name": app.name or app.client_id},
        original=app,
        application=app,
        secret=secret,
        endpoints=ep,
        snippets=snippets,
        diagrams=render_diagrams(app.application_type, app.grant_types),
        type_label=dict(policy.APPLICATION_TYPE_CHOICES).get(app.application_type, app.application_type),
        can_change=allowed(request.user, "application.regenerate_secret"),
    )
    # The secret is in this page only once: never let a cache keep it (shown_once says no-store).
    return shown_once(request, TemplateResponse(request, "console/admin/application_credentials.html", context))


def regenerate_secret(request, model_admin, object_id):
    """Confirm, then give a confidential application a new secret; the old one stops working."""
    require(request, "application.regenerate_secret")
    app = get_object_or_404(Application, pk=object_id)
    if app.is_public:
        messages.info(request, _("%(name)s is a public client: it has no secret (it proves itself with PKCE).") % {"name": app.name})
        return redirect(admin_url("oidc_provider_application_change", app.pk))
    if request.method == "POST":
        secret = app.set_new_secret()
        app.save()
        model_admin.log_change(request, app, [{"changed": {"fields": ["client secret"]}}])
        audit.record(audit.APPLICATION_SECRET_REGENERATED, request=request, target=app)
        stash_client_secret(request, app, secret)
        return shown_once_redirect(request, admin_url("oidc_provider_application_credentials", app.pk))
    context = admin_context(
        request,
        model_admin,
        _("Regenerate the client secret of %(name)s?") % {"name": app.name or app.client_id},
        original=app,
        object=app,
        text=_(
            "A new secret is made and shown once, on the next page. The current secret stops working "
            "at once: every service that uses it fails until you give it the new one."
        ),
        button=_("Yes, regenerate the secret"),
        cancel_url=admin_url("oidc_provider_application_change", app.pk),
        danger=True,
    )
    return TemplateResponse(request, "console/admin/confirm.html", context)


# -- tokens and consents ----------------------------------------------------------------------


def revoke_all_tokens(*, user=None, application=None):
    """Revoke every live token (and pending code) of a user, an application, or both.

    Returns (access tokens, refresh tokens, codes) revoked. Refresh tokens are revoked with
    ``RefreshToken.revoke()`` (it deletes the bound access token and keeps the revoked row
    that replay detection needs); the access tokens left with ``revoke_access_token``.
    """
    filters = {}
    if user is not None:
        filters["user"] = user
    if application is not None:
        filters["application"] = application
    if not filters:
        raise ValueError("revoke_all_tokens needs a user or an application")
    AccessToken = get_access_token_model()
    RefreshToken = get_refresh_token_model()
    with transaction.atomic():
        access = AccessToken.objects.filter(**filters).count()
        refresh = 0
        for token in RefreshToken.objects.filter(revoked__isnull=True, **filters):
            token.revoke()
            refresh += 1
        for token in AccessToken.objects.filter(**filters):
            revoke_access_token(token)
        codes, _by_model = get_grant_model().objects.filter(**filters).delete()
    return access, refresh, codes


def revocation_message(access, refresh, codes):
    return _("Revoked %(access)s, %(refresh)s and %(codes)s.") % {
        "access": ngettext("%d access token", "%d access tokens", access) % access,
        "refresh": ngettext("%d refresh token", "%d refresh tokens", refresh) % refresh,
        "codes": ngettext("%d unused authorization code", "%d unused authorization codes", codes) % codes,
    }


def revoke_application_tokens(request, model_admin, object_id):
    """Confirm, then revoke every token of one application (all its users must sign in again)."""
    require(request, "tokens.revoke")
    app = get_object_or_404(Application, pk=object_id)
    AccessToken = get_access_token_model()
    RefreshToken = get_refresh_token_model()
    if request.method == "POST":
        access, refresh, codes = revoke_all_tokens(application=app)
        forget = bool(request.POST.get("forget_consents"))
        consents = 0
        if forget:
            consents, _by_model = Consent.objects.filter(application=app).delete()
            audit.record(audit.CONSENT_REVOKED, request=request, target=app, consents=consents, scope="application")
        audit.record(
            audit.TOKENS_REVOKED,
            request=request,
            target=app,
            scope="application",
            access_tokens=access,
            refresh_tokens=refresh,
            codes=codes,
        )
        text = revocation_message(access, refresh, codes)
        if forget:
            text += " " + ngettext("Forgot %d consent.", "Forgot %d consents.", consents) % consents
        messages.success(request, text)
        return redirect(admin_url("oidc_provider_application_change", app.pk))
    now = timezone.now()
    context = admin_context(
        request,
        model_admin,
        _("Revoke all tokens of %(name)s?") % {"name": app.name or app.client_id},
        original=app,
        object=app,
        text=_(
            "Every access token, refresh token and unused authorization code of this application stops "
            "working now; its users have to sign in again. The application itself and its secret are kept."
        ),
        facts=[
            _("Live access tokens: %d") % AccessToken.objects.filter(application=app, expires__gt=now).count(),
            _("Live refresh tokens: %d") % RefreshToken.objects.filter(application=app, revoked__isnull=True).count(),
            _("Consents: %d") % Consent.objects.filter(application=app).count(),
        ],
        checkbox={"name": "forget_consents", "label": _("Also forget the users' consents (they will be asked again)")},
        button=_("Yes, revoke all tokens"),
        cancel_url=admin_url("oidc_provider_application_change", app.pk),
        danger=True,
    )
    return TemplateResponse(request, "console/admin/confirm.html", context)


# -- the grant policy matrix ------------------------------------------------------------------


def _cell(application_type, grant):
    return f"{application_type}__{grant}"


def _holders(application_type, grant):
    return [
        app
        for app in Application.objects.filter(application_type=application_type).only("pk", "name", "client_id", "grant_types").order_by("name")
        if grant in (app.grant_types or [])
    ]


def policy_matrix(request, model_admin):
    """Types across, grants down, one select per cell; saved in one POST.

    Each cell also posts the state the page showed (``was__``): only the cells the admin
    changed are applied, so two admins editing different cells do not undo each other.
    Forbidding a grant that applications hold asks for confirmation first, changing nothing.
    """
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    can_change = model_admin.has_change_permission(request)
    current = policy.current_policy()
    state_labels = dict(policy.STATE_CHOICES)
    type_labels = dict(policy.APPLICATION_TYPE_CHOICES)
    grant_labels = dict(policy.GRANT_CHOICES)
    errors = []
    submitted = dict(current)
    status = 200

    if request.method == "POST":
        if not can_change:
            raise PermissionDenied
        changes = []
        for (t, g), state in current.items():
            value = request.POST.get(_cell(t, g))
            was = request.POST.get("was__" + _cell(t, g))
            if value is None:
                continue
            if value not in policy.STATES:
                errors.append(
                    _("'%(value)s' is not a state for %(grant)s / %(type)s; choose recommended, allowed or forbidden.")
                    % {"value": value, "grant": g, "type": t}
                )
                continue
            submitted[(t, g)] = value
            if was not in policy.STATES:
                was = state
            if value != was and value != state:
                changes.append({"type": t, "grant": g, "previous": state, "state": value})
        if errors:
            status = 400
        else:
            conflicts = []
            for change in changes:
                if change["state"] == policy.FORBIDDEN:
                    holders = _holders(change["type"], change["grant"])
                    if holders:
                        conflicts.append({**change, "applications": holders})
            if conflicts and not request.POST.get("confirm"):
                hidden = []
                for (t, g) in current:
                    if (t, g) in submitted:
                        hidden.append((_cell(t, g), submitted[(t, g)]))
                        hidden.append(("was__" + _cell(t, g), request.POST.get("was__" + _cell(t, g)) or current[(t, g)]))
                context = admin_context(
                    request,
                    model_admin,
                    _("Forbid grants that applications hold?"),
                    conflicts=[
                        {**c, "type_label": type_labels[c["type"]], "grant_label": grant_labels[c["grant"]]} for c in conflicts
                    ],
                    changes=[
                        {
                            **c,
                            "type_label": type_labels[c["type"]],
                            "grant_label": grant_labels[c["grant"]],
                            "previous_label": state_labels[c["previous"]],
                            "state_label": state_labels[c["state"]],
                        }
                        for c in changes
                    ],
                    hidden=hidden,
                    matrix_url=admin_url("oidc_provider_grantpolicy_matrix"),
                )
                return TemplateResponse(request, "console/admin/policy_confirm.html", context)
            with transaction.atomic():
                for change in changes:
                    row, _created = GrantPolicy.objects.update_or_create(
                        application_type=change["type"], grant=change["grant"], defaults={"state": change["state"]}
                    )
                    model_admin.log_change(request, row, [{"changed": {"fields": ["state"]}}])
                    audit.record(
                        audit.POLICY_CHANGED,
                        request=request,
                        target=row,
                        application_type=change["type"],
                        grant=change["grant"],
                        state=change["state"],
                        previous=change["previous"],
                    )
            if changes:
                messages.success(
                    request,
                    ngettext(
                        "Saved %(count)d change to the grant policy; it applies to the next request.",
                        "Saved %(count)d changes to the grant policy; they apply to the next request.",
                        len(changes),
                    )
                    % {"count": len(changes)},
                )
            else:
                messages.info(request, _("Nothing changed: every cell already had the state you chose."))
            return redirect(admin_url("oidc_provider_grantpolicy_matrix"))

    holders_count = {}
    for app in Application.objects.only("application_type", "grant_types"):
        for g in app.grant_types or []:
            holders_count[(app.application_type, g)] = holders_count.get((app.application_type, g), 0) + 1
    rows = []
    for g in policy.GRANTS:
        cells = []
        for t in policy.APPLICATION_TYPES:
            cells.append(
                {
                    "name": _cell(t, g),
                    "type": t,
                    "type_label": type_labels[t],
                    "value": submitted[(t, g)],
                    "was": current[(t, g)],
                    "default": policy.DEFAULT_POLICY[(t, g)],
                    "default_label": state_labels[policy.DEFAULT_POLICY[(t, g)]],
                    "is_default": current[(t, g)] == policy.DEFAULT_POLICY[(t, g)],
                    "holders": holders_count.get((t, g), 0),
                    "holders_url": admin_url("oidc_provider_application_changelist", query={"application_type__exact": t}),
                }
            )
        rows.append({"grant": g, "label": grant_labels[g], "warning": policy.WARNINGS.get(g, ""), "cells": cells})
    context = admin_context(
        request,
        model_admin,
        _("Grant policy matrix"),
        subtitle=_("Application types across, grants down"),
        types=[(t, type_labels[t]) for t in policy.APPLICATION_TYPES],
        rows=rows,
        states=policy.STATE_CHOICES,
        errors=errors,
        can_change=can_change,
        list_url=admin_url("oidc_provider_grantpolicy_changelist"),
    )
    return TemplateResponse(request, "console/admin/policy_matrix.html", context, status=status)


# -- programmatic access: key pairs -------------------------------------------------------------


def issue_access_key(request, model_admin, object_id):
    """POST: a new AK/SK pair for the account, shown once on the next page."""
    require(request, "access_key.issue")
    account = get_object_or_404(model_admin.model, pk=object_id)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    key, sk = access_keys.issue(account)
    model_admin.log_change(request, account, [{"added": {"name": "access key", "object": key.access_key}}])
    audit.record(audit.ACCESS_KEY_ISSUED, request=request, target=key, target_label=key.access_key, account=account.name)
    stash_access_keys(request, [(key, sk)])
    return shown_once_redirect(request, admin_url("oidc_provider_accesskey_issued"))


def access_key_action(request, model_admin, object_id, action):
    """Confirm, then revoke or rotate one pair; the account's other pairs are untouched."""
    require(request, "access_key.revoke" if action == "revoke" else "access_key.rotate")
    key = get_object_or_404(AccessKey.objects.select_related("account"), pk=object_id)
    account_url = admin_url("oidc_provider_accessaccount_change", key.account_id)
    if key.revoked_at is not None:
        messages.info(request, _("The pair %(ak)s is already revoked.") % {"ak": key.access_key})
        return redirect(account_url)
    if request.method == "POST":
        if action == "revoke":
            access_keys.revoke(key)
            audit.record(audit.ACCESS_KEY_REVOKED, request=request, target=key, target_label=key.access_key, account=key.account.name)
            model_admin.log_change(request, key, [{"changed": {"fields": ["revoked"]}}])
            messages.success(
                request,
                _("Revoked %(ak)s: it gets no new tokens. Tokens it already has expire on their own; revoke them under Access tokens if needed.")
                % {"ak": key.access_key},
            )
            return redirect(account_url)
        new_key, sk = audit.rotate_access_key(key, request)
        model_admin.log_change(request, key, [{"changed": {"fields": ["revoked"]}}])
        stash_access_keys(request, [(new_key, sk)])
        return shown_once_redirect(request, admin_url("oidc_provider_accesskey_issued"))
    if action == "revoke":
        title = _("Revoke the key pair %(ak)s?") % {"ak": key.access_key}
        text = _(
            "The pair stops getting tokens at once. Whatever uses it fails until you give it another pair. "
            "The account's other pairs keep working."
        )
        button = _("Yes, revoke it")
    else:
        title = _("Rotate the key pair %(ak)s?") % {"ak": key.access_key}
        text = _(
            "A new pair is issued on the same account and shown once on the next page; this pair is revoked "
            "at once. The account's other pairs keep working."
        )
        button = _("Yes, rotate it")
    context = admin_context(
        request,
        model_admin,
        title,
        original=key,
        object=key,
        text=text,
        facts=[
            _("Account: %s") % key.account.name,
            _("Created: %s") % key.created_at.strftime("%Y-%m-%d %H:%M"),
            _("Last used: %s") % (key.last_used_at.strftime("%Y-%m-%d %H:%M") if key.last_used_at else _("never")),
        ],
        button=button,
        cancel_url=account_url,
        danger=True,
    )
    return TemplateResponse(request, "console/admin/confirm.html", context)


def access_keys_issued(request, model_admin):
    """The new pairs' secret keys, once, with a copy button and a curl example."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    shown = pop_access_keys(request)
    token_endpoint = flows.endpoints(oidc_settings.issuer)["token"]
    pairs = []
    keys_by_pk = {k.pk: k for k in AccessKey.objects.select_related("account").filter(pk__in=[e["key_id"] for e in shown])}
    for entry in shown:
        key = keys_by_pk.get(entry["key_id"])
        if key is None:
            continue
        scope = " ".join(key.account.scopes) if key.account.scopes else "read"
        pairs.append(
            {
                "key": key,
                "account": key.account,
                "access_key": entry["access_key"],
                "secret_key": entry["secret_key"],
                "curl": flows.client_credentials_curl(token_endpoint, entry["access_key"], entry["secret_key"], scope),
                "account_url": admin_url("oidc_provider_accessaccount_change", key.account_id),
            }
        )
    context = admin_context(
        request,
        model_admin,
        ngettext("New key pair", "New key pairs", len(pairs)) if pairs else _("Key pairs"),
        pairs=pairs,
        token_endpoint=token_endpoint,
        accounts_url=admin_url("oidc_provider_accessaccount_changelist"),
    )
    return shown_once(request, TemplateResponse(request, "console/admin/access_keys_issued.html", context))


# -- the audit log ------------------------------------------------------------------------------

CSV_FIELDS = ("occurred_at", "actor_label", "action", "target_type", "target_id", "target_label", "ip_address", "details")


def _csv_cell(value):
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def audit_csv_response(queryset, filename="audit-log.csv"):
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(CSV_FIELDS)
    for event in queryset.iterator():
        writer.writerow(
            [
                _csv_cell(event.occurred_at.isoformat()),
                _csv_cell(event.actor_label),
                _csv_cell(event.action),
                _csv_cell(event.target_type),
                _csv_cell(event.target_id),
                _csv_cell(event.target_label),
                _csv_cell(event.ip_address),
                _csv_cell(json.dumps(event.details, sort_keys=True, default=str)),
            ]
        )
    return response


def audit_export(request, model_admin):
    """The audit changelist as it is filtered now (every page of it), as CSV."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    from django.contrib.admin.options import IncorrectLookupParameters

    try:
        changelist = model_admin.get_changelist_instance(request)
    except IncorrectLookupParameters:
        raise Http404(_("Unknown filter in the address; go back to the audit log and filter again."))
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    return audit_csv_response(changelist.get_queryset(request), filename=f"audit-log-{stamp}.csv")


# -- the dashboard ------------------------------------------------------------------------------


def chart_table(days, series):
    """A chart's numbers as a table: the same data for readers who cannot see the picture."""
    return {
        "labels": [label for _key, label, _values in series],
        "rows": [(day, [values[i] for _key, _label, values in series]) for i, day in enumerate(days)],
    }


def dashboard(request, days=14):
    """Counts and charts for the admin's first page."""
    from django.db.models import Count, Sum
    from django.db.models.functions import TruncDate

    from oidc_provider.models import AccessAccount, SigningKey

    from . import token_counts
    from .models import AuditEvent, DailyTokenCount

    user = request.user
    today = timezone.localdate()
    day_list = charts.last_days(today, days)
    first = day_list[0]
    context = {"days": days, "counts": []}

    if allowed(user, "application.view"):
        apps = Application.objects.filter(access_account__isnull=True)
        context["counts"].append(
            {
                "label": _("Applications"),
                "value": apps.count(),
                "url": admin_url("oidc_provider_application_changelist"),
            }
        )
    if allowed(user, "access_account.view"):
        context["counts"].append(
            {
                "label": _("Access accounts"),
                "value": AccessAccount.objects.count(),
                "detail": _("%d active key pairs") % AccessKey.objects.filter(revoked_at__isnull=True, account__is_active=True).count(),
                "url": admin_url("oidc_provider_accessaccount_changelist"),
            }
        )
    if allowed(user, "signing_key.view"):
        context["counts"].append(
            {
                "label": _("Active signing keys"),
                "value": SigningKey.objects.filter(status=SigningKey.ACTIVE).count(),
                "detail": _("%d published") % SigningKey.objects.exclude(status=SigningKey.RETIRED).count(),
                "url": admin_url("oidc_provider_signingkey_changelist"),
            }
        )

    token_counts.flush()  # this process's own counts; other processes' are at most an interval behind
    rows = DailyTokenCount.objects.filter(day__gte=first, day__lte=today).values("day", "grant").annotate(n=Sum("count"))
    per_grant = {}
    for row in rows:
        per_grant.setdefault(row["grant"], {})[row["day"]] = row["n"]
    grant_labels = dict(policy.GRANT_CHOICES)
    ordered = [g for g in policy.GRANTS if g in per_grant] + sorted(g for g in per_grant if g not in policy.GRANTS)
    if not ordered:
        ordered = [policy.AUTHORIZATION_CODE, policy.CLIENT_CREDENTIALS, policy.REFRESH_TOKEN]
    token_series = [
        (g, str(grant_labels.get(g, g)), [per_grant.get(g, {}).get(d, 0) for d in day_list]) for g in ordered
    ]
    context["tokens_chart"] = charts.stacked_bar_chart(
        day_list,
        token_series,
        title=_("Tokens issued per day, last %d days, by grant") % days,
        empty_text=_("No tokens issued in the last %d days") % days,
        chart_id="chart-tokens",
    )
    context["tokens_table"] = chart_table(day_list, token_series)

    failed = {}
    if allowed(user, "audit.view"):
        start = timezone.make_aware(datetime.combine(first, time.min))
        for row in (
            AuditEvent.objects.filter(action=audit.LOGIN_FAILED, occurred_at__gte=start)
            .annotate(day=TruncDate("occurred_at", tzinfo=timezone.get_current_timezone()))
            .values("day")
            .annotate(n=Count("id"))
        ):
            failed[row["day"]] = row["n"]
        failed_series = [(audit.LOGIN_FAILED, _("Failed logins"), [failed.get(d, 0) for d in day_list])]
        context["failed_chart"] = charts.stacked_bar_chart(
            day_list,
            failed_series,
            title=_("Failed logins per day, last %d days") % days,
            empty_text=_("No failed logins in the last %d days") % days,
            chart_id="chart-failed-logins",
        )
        context["failed_table"] = chart_table(day_list, failed_series)
        context["failed_url"] = admin_url("console_auditevent_changelist", query={"action__exact": audit.LOGIN_FAILED})
        context["audit_url"] = admin_url("console_auditevent_changelist")
    context["links"] = [(reverse("console:api-tokens"), _("My API tokens"))]
    if allowed(user, "application.add"):
        context["links"].append((admin_url("oidc_provider_application_flow"), _("Which flow do I need?")))
    if allowed(user, "policy.view"):
        context["links"].append((admin_url("oidc_provider_grantpolicy_matrix"), _("Grant policy matrix")))
    if allowed(user, "audit.view"):
        context["links"].append((admin_url("console_auditevent_changelist"), _("Audit log")))
    return context


def is_popup(request):
    return IS_POPUP_VAR in request.POST or IS_POPUP_VAR in request.GET
