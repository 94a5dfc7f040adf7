"""The grant policy as a matrix: application types across, grants down, saved in one POST."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from oidc_provider import policy
from oidc_provider.models import GrantPolicy

from .. import services
from .common import admin_context, admin_url


def _cell(application_type, grant):
    return f"{application_type}__{grant}"


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
                    holders = policy.applications_holding(change["type"], change["grant"])
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
                    services.set_grant_policy(request.user, change["type"], change["grant"], change["state"])
                    row = GrantPolicy.objects.get(application_type=change["type"], grant=change["grant"])
                    model_admin.log_change(request, row, [{"changed": {"fields": ["state"]}}])
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
                    "holders": len(policy.applications_holding(t, g)),
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
