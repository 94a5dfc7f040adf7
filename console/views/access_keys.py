"""AK/SK pairs: issue one, revoke or rotate one, and the page that shows new SKs once."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from oidc_provider.conf import oidc_settings
from oidc_provider.models import AccessKey

from .. import flows, services
from ..permissions import require
from .common import admin_context, admin_url
from .shown_once import pop_access_keys, shown_once, shown_once_redirect, stash_access_keys


def issue_access_key(request, model_admin, object_id):
    """POST: a new AK/SK pair for the account, shown once on the next page."""
    require(request, "access_key.issue")
    account = get_object_or_404(model_admin.model, pk=object_id)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    key, sk = services.issue_access_key(request.user, account)
    model_admin.log_change(request, account, [{"added": {"name": "access key", "object": key.access_key}}])
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
            services.revoke_access_key(request.user, key)
            model_admin.log_change(request, key, [{"changed": {"fields": ["revoked"]}}])
            messages.success(
                request,
                _("Revoked %(ak)s: it gets no new tokens. Tokens it already has expire on their own; revoke them under Access tokens if needed.")
                % {"ak": key.access_key},
            )
            return redirect(account_url)
        new_key, sk = services.rotate_access_key(request.user, key)
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
