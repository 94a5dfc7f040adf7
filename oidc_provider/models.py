from secrets import token_urlsafe
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from oauth2_provider.models import AbstractApplication

from . import grants, secrets
from .grants import (
    APPLICATION_TYPE_CHOICES,
    APPLICATION_TYPES,
    AUTHORIZATION_CODE,
    CLIENT_CREDENTIALS,
    DEFAULT_POLICY,
    DOT_GRANT_TYPES,
    FORBIDDEN,
    GRANT_CHOICES,
    HYBRID,
    IMPLICIT,
    NATIVE,
    PUBLIC_TYPES,
    SERVICE,
    STATE_CHOICES,
    WEB,
)

LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}
# Schemes that must never be a redirect target, whatever a native app registers.
DANGEROUS_SCHEMES = {"javascript", "data", "vbscript", "file", "about", "blob"}


class SecretDigestField(models.CharField):
    """Stores a keyed digest of the secret put on it (see secrets.py), never the secret."""

    def pre_save(self, model_instance, add):
        value = getattr(model_instance, self.attname)
        if value and not secrets.is_digest(value):
            value = secrets.digest(value)
            setattr(model_instance, self.attname, value)
        return value


def split_url(uri):
    """``urlsplit(uri)``, or a ValidationError for what it cannot read (a broken IPv6 host...)."""
    try:
        return urlsplit(uri)
    except ValueError:
        raise ValidationError(_("'%(uri)s' is not a URL.") % {"uri": uri})


def validate_redirect_uri(uri, application_type):
    """A redirect URI is https, or http on a loopback host (RFC 8252), or a native app's private scheme."""
    parts = split_url(uri)
    scheme = parts.scheme.lower()
    if not scheme:
        raise ValidationError(_("'%(uri)s' is not an absolute URI.") % {"uri": uri})
    if "#" in uri:
        raise ValidationError(_("'%(uri)s' has a fragment; redirect URIs must not (RFC 6749 §3.1.2).") % {"uri": uri})
    if scheme in DANGEROUS_SCHEMES:
        raise ValidationError(_("The scheme '%(scheme)s' cannot be a redirect URI.") % {"scheme": scheme})
    if scheme == "https":
        if not parts.hostname:
            raise ValidationError(_("'%(uri)s' has no host.") % {"uri": uri})
    elif scheme == "http":
        if parts.hostname not in LOOPBACK_HOSTS:
            raise ValidationError(
                _("'%(uri)s' uses http on a non-loopback host; use https, or http only with 127.0.0.1, [::1] or localhost.")
                % {"uri": uri}
            )
    elif application_type != NATIVE:
        raise ValidationError(
            _("'%(uri)s' uses the scheme '%(scheme)s'; only native applications may use a private scheme, others need https.")
            % {"uri": uri, "scheme": scheme}
        )
    elif "." not in scheme:
        # RFC 8252 §7.1: a private-use scheme is a reverse domain name the app controls.
        raise ValidationError(
            _("'%(scheme)s' is not a reverse-domain scheme (e.g. com.example.app), as RFC 8252 §7.1 requires.")
            % {"scheme": scheme}
        )


def validate_origin(origin):
    """A CORS origin: scheme://host[:port], https (http only on loopback), no path."""
    parts = split_url(origin)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise ValidationError(_("'%(origin)s' is not an origin (scheme://host[:port], no path).") % {"origin": origin})
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise ValidationError(_("'%(origin)s' uses http on a non-loopback host; use https.") % {"origin": origin})


def validate_logout_uri(uri):
    """A logout URI the provider calls (back-channel) or frames (front-channel): https, or http
    on a loopback host, with no fragment (OIDC Back-Channel Logout 2.2, Front-Channel 2)."""
    parts = split_url(uri)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValidationError(_("'%(uri)s' is not an absolute https URL.") % {"uri": uri})
    if "#" in uri:
        raise ValidationError(_("'%(uri)s' has a fragment; a logout URI must not.") % {"uri": uri})
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise ValidationError(_("'%(uri)s' uses http on a non-loopback host; use https.") % {"uri": uri})


class Application(AbstractApplication):
    """A relying party: its type decides, under the grant policy, which grants it may hold.

    Swaps django-oauth-toolkit's Application from our first migration, so every DOT
    table references this one from the start.
    """

    application_type = models.CharField(
        _("application type"), max_length=16, choices=APPLICATION_TYPE_CHOICES, default=WEB
    )
    grant_types = models.JSONField(_("grants"), default=list, blank=True)
    description = models.TextField(_("description"), blank=True, default="")
    is_resource_server = models.BooleanField(
        _("resource server"), default=False,
        help_text=_("May introspect any token (RFC 7662), not only its own: for APIs that check tokens."),
    )
    client_secret = SecretDigestField(
        _("client secret"), max_length=255, blank=True, default="", db_index=True,
        help_text=_("Stored as a keyed digest; the secret itself is shown once, when it is made."),
    )
    backchannel_logout_uri = models.CharField(
        _("back-channel logout URI"), max_length=500, blank=True, default="", validators=[validate_logout_uri],
        help_text=_("When a user's session that signed into this application ends, the provider POSTs a signed "
                    "logout token here (OpenID Connect Back-Channel Logout)."),
    )
    frontchannel_logout_uri = models.CharField(
        _("front-channel logout URI"), max_length=500, blank=True, default="", validators=[validate_logout_uri],
        help_text=_("Loaded in a hidden frame of the signed-out page, with iss and sid, when a user's session that "
                    "signed into this application ends (OpenID Connect Front-Channel Logout)."),
    )
    algorithm = models.CharField(max_length=5, choices=AbstractApplication.ALGORITHM_TYPES, default="RS256", blank=True)
    # Derived from application_type and grant_types in save(); DOT code still reads them.
    client_type = models.CharField(
        max_length=32, choices=AbstractApplication.CLIENT_TYPES, default=AbstractApplication.CLIENT_CONFIDENTIAL, editable=False
    )
    authorization_grant_type = models.CharField(
        max_length=44, choices=AbstractApplication.GRANT_TYPES, default=AbstractApplication.GRANT_AUTHORIZATION_CODE, editable=False
    )

    class Meta(AbstractApplication.Meta):
        verbose_name = _("application")
        # The dangerous actions on an application, each its own permission beyond change_.
        permissions = [
            ("regenerate_secret", _("Can regenerate an application's client secret")),
            ("revoke_tokens", _("Can revoke the tokens and consents of users and applications")),
        ]

    # The secret in clear, set only on the instance that made it, for showing once.
    plaintext_secret = None

    @property
    def is_public(self):
        return self.application_type in PUBLIC_TYPES

    def set_new_secret(self):
        """Give a confidential client a new secret; returns it (the only time it is seen)."""
        self.plaintext_secret = secrets.generate_secret()
        self.client_secret = self.plaintext_secret
        return self.plaintext_secret

    def save(self, *args, **kwargs):
        self.client_type = self.CLIENT_PUBLIC if self.is_public else self.CLIENT_CONFIDENTIAL
        if self.is_public:
            self.client_secret = ""
        elif not self.client_secret:
            self.set_new_secret()
        # DOT's single-grant column, kept meaningful for DOT code that still reads it.
        dot_names = {v: k for k, v in DOT_GRANT_TYPES.items()}
        primary = next((dot_names[g] for g in self.grant_types if g in dot_names), self.GRANT_AUTHORIZATION_CODE)
        self.authorization_grant_type = primary
        self.algorithm = self.RS256_ALGORITHM
        self.hash_client_secret = True
        super().save(*args, **kwargs)

    def clean(self):
        errors = {}
        if not isinstance(self.grant_types, list) or not all(isinstance(g, str) for g in self.grant_types):
            errors["grant_types"] = [_("Give the grants as a list of names, e.g. [\"authorization_code\", \"refresh_token\"].")]
        elif self.application_type not in APPLICATION_TYPES:
            errors["application_type"] = [_("Choose one of: %s.") % ", ".join(APPLICATION_TYPES)]
        else:
            grant_errors = grants.validate_grants(self.application_type, self.grant_types or [], GrantPolicy.objects.table())
            if grant_errors:
                errors["grant_types"] = grant_errors
        uris = self.redirect_uris.split()
        for field in ("redirect_uris", "post_logout_redirect_uris"):
            field_errors = []
            for uri in getattr(self, field).split():
                try:
                    validate_redirect_uri(uri, self.application_type)
                except ValidationError as e:
                    field_errors.extend(e.messages)
            if field_errors:
                errors[field] = field_errors
        origin_errors = []
        for origin in self.allowed_origins.split():
            try:
                validate_origin(origin)
            except ValidationError as e:
                origin_errors.extend(e.messages)
        if origin_errors:
            errors["allowed_origins"] = origin_errors
        front_channel = {AUTHORIZATION_CODE, IMPLICIT, HYBRID}
        if not uris and front_channel & set(self.grant_types or []):
            errors.setdefault("redirect_uris", []).append(
                _("Add at least one redirect URI: the grants chosen send the user back to the application.")
            )
        if errors:
            raise ValidationError(errors)

    # -- django-oauth-toolkit hooks ------------------------------------------------

    def allows_grant_type(self, *grant_types):
        # For django-oauth-toolkit code that asks: the policy's answer, not DOT's single-grant
        # one. The provider's validator asks policy.may_use, which reads through the cache.
        table = GrantPolicy.objects.table()
        held = [DOT_GRANT_TYPES.get(g, g) for g in grant_types]
        return any(g in (self.grant_types or []) and table.get((self.application_type, g), FORBIDDEN) != FORBIDDEN for g in held)

    def redirect_uri_allowed(self, uri):
        """Exact string match; native apps may vary a loopback port (RFC 8252 §7.3)."""
        registered = self.redirect_uris.split()
        if uri in registered:
            return True
        if self.application_type == NATIVE:
            try:
                asked = urlsplit(uri)
            except ValueError:
                return False
            if asked.scheme == "http" and asked.hostname in LOOPBACK_HOSTS:
                for r in registered:
                    r = urlsplit(r)
                    if (r.scheme, r.hostname, r.path, r.query) == ("http", asked.hostname, asked.path, asked.query):
                        return True
        return False

    def post_logout_redirect_uri_allowed(self, uri):
        return uri in self.post_logout_redirect_uris.split()

    def get_allowed_schemes(self):
        schemes = {"https", "http"}
        if self.application_type == NATIVE:
            schemes |= {urlsplit(u).scheme.lower() for u in self.redirect_uris.split()} - DANGEROUS_SCHEMES
        return sorted(schemes)



class GrantPolicyQuerySet(models.QuerySet):
    def table(self):
        """{(type, grant): state} for every pair, stored states over defaults."""
        table = dict(DEFAULT_POLICY)
        table.update({(p.application_type, p.grant): p.state for p in self.all()})
        return table


class GrantPolicy(models.Model):
    """One (application type, grant) pair's state; absent pairs take DEFAULT_POLICY."""

    application_type = models.CharField(_("application type"), max_length=16, choices=APPLICATION_TYPE_CHOICES)
    grant = models.CharField(_("grant"), max_length=32, choices=GRANT_CHOICES)
    state = models.CharField(_("state"), max_length=16, choices=STATE_CHOICES)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = GrantPolicyQuerySet.as_manager()

    class Meta:
        verbose_name = _("grant policy entry")
        verbose_name_plural = _("grant policy")
        constraints = [models.UniqueConstraint(fields=["application_type", "grant"], name="oidc_grantpolicy_unique_pair")]
        ordering = ["grant", "application_type"]

    def __str__(self):
        return f"{self.application_type} / {self.grant}: {self.state}"


class SigningKey(models.Model):
    NEXT = "next"
    ACTIVE = "active"
    INACTIVE = "inactive"
    RETIRED = "retired"
    STATUS_CHOICES = [
        (NEXT, _("Next (published, not signing yet)")),
        (ACTIVE, _("Active (signs new tokens)")),
        (INACTIVE, _("Inactive (published, verifies older tokens)")),
        (RETIRED, _("Retired (unpublished)")),
    ]

    kid = models.CharField(_("key ID"), max_length=64, unique=True)
    algorithm = models.CharField(_("algorithm"), max_length=8, default="RS256")
    # Encrypted under OIDC_PROVIDER["KEY_ENCRYPTION_KEYS"] (keys.encrypt_pem); never a plain PEM.
    private_key = models.TextField(_("private key (encrypted PEM)"))
    status = models.CharField(_("status"), max_length=16, choices=STATUS_CHOICES, default=NEXT, db_index=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    activated_at = models.DateTimeField(_("activated"), null=True, blank=True)
    retired_at = models.DateTimeField(_("retired"), null=True, blank=True)

    class Meta:
        verbose_name = _("signing key")
        ordering = ["-created_at"]
        permissions = [
            ("rotate_signingkey", _("Can rotate the signing keys")),
            ("retire_signingkey", _("Can retire a signing key")),
        ]
        constraints = [
            # Exactly one key signs: two workers starting at once cannot both create one.
            models.UniqueConstraint(fields=["status"], condition=models.Q(status="active"), name="oidc_signingkey_one_active"),
        ]

    def __str__(self):
        return f"{self.kid} ({self.status})"


def _new_subject():
    return token_urlsafe(24)


class Subject(models.Model):
    """A user's `sub`: random, stable for life, never reused and never the database id.

    Kept in its own table so a custom user model needs no extra field.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_subject")
    value = models.CharField(_("subject identifier"), max_length=64, unique=True, default=_new_subject)

    class Meta:
        verbose_name = _("subject identifier")

    def __str__(self):
        return self.value


class Consent(models.Model):
    """The scopes a user approved for an application; later requests within them skip the page."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_consents")
    application = models.ForeignKey(
        Application, on_delete=models.CASCADE, related_name="consents")
    scope = models.TextField(_("scope"), blank=True, default="")
    created_at = models.DateTimeField(_("given"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("consent")
        constraints = [models.UniqueConstraint(fields=["user", "application"], name="oidc_consent_unique_user_app")]

    def covers(self, scopes):
        return set(scopes) <= set(self.scope.split())


def _new_sid():
    return token_urlsafe(24)


class LoginSession(models.Model):
    """A user's login at the provider as relying parties know it: the ``sid`` of the ID
    tokens issued in it (OIDC Front-Channel and Back-Channel Logout), and the Django session
    it is, so that an admin can end it."""

    sid = models.CharField(_("session ID"), max_length=64, unique=True, default=_new_sid, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_login_sessions")
    # Django's session key, as secret as the session table's own: never shown.
    session_key = models.CharField(max_length=40, blank=True, default="", editable=False, db_index=True)
    created_at = models.DateTimeField(_("started"), auto_now_add=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = _("login session")

    def __str__(self):
        return f"{self.user} ({self.created_at:%Y-%m-%d %H:%M})"


class SessionSignIn(models.Model):
    """An application a login session signed into, and what was issued to it there: the
    application is told when the session ends, and those tokens are revoked."""

    session = models.ForeignKey(LoginSession, on_delete=models.CASCADE, related_name="sign_ins")
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="+")
    code_digest = models.CharField(max_length=64, blank=True, default="")
    # The refresh token family the code begins (its ID tokens carry this session's sid too).
    token_family = models.UUIDField(null=True, db_index=True)
    # An access token issued by the authorization endpoint itself (implicit and hybrid).
    access_token_id = models.BigIntegerField(null=True)
    # Granted offline_access: its refresh tokens outlive the session (OIDC Core 11).
    offline = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)


class LogoutNotice(models.Model):
    """A back-channel logout token to deliver to one application, until it is delivered or
    given up; each attempt's outcome is in the audit log."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="+")
    sid = models.CharField(max_length=64)
    subject = models.CharField(max_length=255)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    given_up_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)


class InitialAccessToken(models.Model):
    """Lets whoever holds it register clients at the registration endpoint (RFC 7591 §3)
    until it expires or is revoked. Only its digest is kept; it is shown once."""

    digest = models.CharField(max_length=80, unique=True, editable=False)
    note = models.CharField(_("note"), max_length=200, blank=True, default="",
                            help_text=_("Who it is for, e.g. the partner or the pipeline that registers clients."))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+", verbose_name=_("issued by"))
    created_at = models.DateTimeField(_("issued"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"))
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("registration token")
        permissions = [("revoke_initialaccesstoken", _("Can revoke a registration token"))]

    def __str__(self):
        return self.note or f"#{self.pk}"

    def is_usable(self):
        return self.revoked_at is None and self.expires_at > timezone.now()


class ClientRegistration(models.Model):
    """A client registered at the registration endpoint, and the digest of its registration
    access token, with which it reads, updates and deletes its registration (RFC 7592)."""

    application = models.OneToOneField(Application, on_delete=models.CASCADE, related_name="registration")
    access_token_digest = models.CharField(max_length=80, unique=True, editable=False)
    initial_access_token = models.ForeignKey(InitialAccessToken, on_delete=models.SET_NULL, null=True,
                                             related_name="registrations")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)


class RedeemedCode(models.Model):
    """A spent authorization code whose exchange issued no refresh token, kept until it
    expires so a replay can revoke the access token it issued; ``manage.py cleartokens``
    deletes it after that. (An exchange that issued a refresh token needs no row: its token
    family is derived from the code, see validators.code_token_family.)"""

    code_digest = models.CharField(max_length=64, unique=True)
    application = models.ForeignKey(Application, on_delete=models.CASCADE)
    access_token_id = models.BigIntegerField(null=True)
    token_family = models.UUIDField(null=True)
    redeemed_at = models.DateTimeField(auto_now_add=True)


class AccessAccount(models.Model):
    """A programmatic access account: a machine identity holding any number of AK/SK pairs.

    Its resource permissions are the scopes its keys may ask for (client credentials only).
    Tokens it gets are issued to a service application made for it, so every token still
    belongs to an application, as django-oauth-toolkit requires.
    """

    name = models.CharField(_("name"), max_length=150, unique=True)
    description = models.TextField(_("description"), blank=True, default="")
    scopes = models.JSONField(_("resource permissions"), default=list, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    application = models.OneToOneField(Application, on_delete=models.PROTECT, related_name="access_account", editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("programmatic access account")
        ordering = ["name"]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        if self.application_id is None:
            self.application = Application.objects.create(
                name=f"Access account: {self.name}",
                application_type=SERVICE,
                grant_types=[CLIENT_CREDENTIALS],
                skip_authorization=True,
            )
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        # The backing application (and the tokens issued to it) goes with the account.
        application = self.application
        result = super().delete(*args, **kwargs)
        application.delete()
        return result


class AccessKey(models.Model):
    """One AK/SK pair: the AK is sent as client_id, the SK as client_secret."""

    account = models.ForeignKey(AccessAccount, on_delete=models.CASCADE, related_name="keys")
    access_key = models.CharField(_("access key (AK)"), max_length=64, unique=True)
    secret_key = SecretDigestField(_("secret key (SK) digest"), max_length=255)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("access key")
        ordering = ["-created_at"]
        permissions = [
            ("issue_accesskey", _("Can issue an access key pair (AK/SK)")),
            ("revoke_accesskey", _("Can revoke an access key pair")),
        ]

    def __str__(self):
        return self.access_key

    @property
    def is_active(self):
        return self.revoked_at is None and self.account.is_active


class ConfigVersion(models.Model):
    """One row: a random value rewritten whenever applications, the policy, signing keys
    or AK/SK pairs change, so every process knows when its in-memory copy is stale
    (config_cache.py)."""

    value = models.BigIntegerField()

    class Meta:
        verbose_name = _("configuration version")


class ThrottleCount(models.Model):
    """Failures counted by throttle.py in one time bucket (or, for a ``block:`` key, a block
    and when it ends), in the database so that every worker and server shares them."""

    key = models.CharField(max_length=100, primary_key=True)
    count = models.PositiveIntegerField(default=0)
    expires = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = _("throttle count")


class PeriodicRun(models.Model):
    """When a job the server's processes run themselves is next due (cleanup.py): the process
    whose conditional UPDATE moves ``due_at`` on runs it, so one process of all the nodes does."""

    name = models.CharField(max_length=64, primary_key=True)
    due_at = models.DateTimeField()
