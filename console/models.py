from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AuditEvent(models.Model):
    """Who did what, when: console changes and security events. Append-only."""

    occurred_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("actor")
    )
    # Who, as text: a username, "cli", a client_id, or "anonymous"; kept when the user is deleted.
    actor_label = models.CharField(_("actor"), max_length=150, blank=True, default="")
    action = models.CharField(_("action"), max_length=64, db_index=True)
    target_type = models.CharField(_("target type"), max_length=64, blank=True, default="")
    target_id = models.CharField(_("target id"), max_length=255, blank=True, default="")
    target_label = models.CharField(_("target"), max_length=255, blank=True, default="")
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    # The X-Request-ID of the request that caused it: the same id is in every log line of it.
    request_id = models.CharField(_("request id"), max_length=128, blank=True, default="", db_index=True)
    details = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("audit event")
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["action", "occurred_at"], name="console_audit_action_time")]

    def __str__(self):
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action} {self.target_label}".strip()


class DailyTokenCount(models.Model):
    """Tokens issued per day and grant, for the dashboard (one row per day and grant)."""

    day = models.DateField(_("day"))
    grant = models.CharField(_("grant"), max_length=64)
    count = models.PositiveIntegerField(_("count"), default=0)

    class Meta:
        verbose_name = _("tokens issued per day")
        constraints = [models.UniqueConstraint(fields=["day", "grant"], name="console_dailytokencount_day_grant")]


class Refusal(models.Model):
    """A relying party's authorization or token request the provider refused, and why.

    Facts only: what the request carried beside what is configured, never a secret, code or
    token. Kept for ``CONSOLE_REFUSAL_RETENTION_DAYS``, at most ``CONSOLE_REFUSALS_MAX_ROWS``
    rows (``console.refusals``).
    """

    at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    application = models.ForeignKey(
        "oidc_provider.Application", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("application"),
    )
    # As the request sent it (printable, bounded): it may name no application at all.
    client_id = models.CharField(_("client ID"), max_length=200, blank=True, default="", db_index=True)
    endpoint = models.CharField(_("endpoint"), max_length=16)
    error = models.CharField(_("error"), max_length=64, blank=True, default="")
    description = models.CharField(_("error description"), max_length=500, blank=True, default="")
    rule = models.CharField(_("rule"), max_length=64, db_index=True)
    sent = models.JSONField(_("sent"), default=dict, blank=True)
    registered = models.JSONField(_("registered"), default=dict, blank=True)
    request_id = models.CharField(_("request id"), max_length=128, blank=True, default="", db_index=True)

    class Meta:
        verbose_name = _("refused request")
        verbose_name_plural = _("refused requests")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["application", "at"], name="console_refusal_app_time")]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.client_id} {self.endpoint} {self.rule}"
