"""What the console's pages share: the admin's context, admin URLs, the popup flag."""

from urllib.parse import urlencode

from django.contrib.admin.options import IS_POPUP_VAR
from django.urls import reverse


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


def is_popup(request):
    return IS_POPUP_VAR in request.POST or IS_POPUP_VAR in request.GET
