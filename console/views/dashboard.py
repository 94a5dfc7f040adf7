"""The admin's first page: counts, charts and links, each shown to whoever may see it."""

from datetime import datetime, time

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from oidc_provider import policy
from oidc_provider.models import AccessAccount, AccessKey, Application, SigningKey

from .. import audit, charts, token_counts
from ..models import AuditEvent, DailyTokenCount
from ..permissions import allowed
from .common import admin_url


def chart_table(days, series):
    """A chart's numbers as a table: the same data for readers who cannot see the picture."""
    return {
        "labels": [label for _key, label, _values in series],
        "rows": [(day, [values[i] for _key, _label, values in series]) for i, day in enumerate(days)],
    }


def dashboard(request, days=14):
    """Counts and charts for the admin's first page."""
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
        active_pairs = AccessKey.objects.filter(revoked_at__isnull=True, account__is_active=True).count()
        context["counts"].append(
            {
                "label": _("Access accounts"),
                "value": AccessAccount.objects.count(),
                "detail": ngettext("%d active key pair", "%d active key pairs", active_pairs) % active_pairs,
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

    token_counts.flush()  # this process's own counts, before reading everyone's
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
