"""Forms of the admin console.

The rules live in the provider (``oidc_provider.policy`` and ``Application.clean()``); these
forms only present them: which grants a type may hold, with the docs' warnings, and the
errors the model raises shown on the field they belong to.
"""

from urllib.parse import urlsplit

from django import forms
from django.utils.translation import gettext_lazy as _

from oidc_provider import access_keys, policy
from oidc_provider.models import LOOPBACK_HOSTS, AccessAccount, Application, validate_redirect_uri
from oidc_provider.scopes import OIDC_SCOPE_DESCRIPTIONS, all_scopes


def grant_label(grant, application_type, state):
    """What a grant's checkbox says for one application type under one policy state."""
    name = "%s (%s)" % (dict(policy.GRANT_CHOICES).get(grant, grant), grant)
    if state == policy.RECOMMENDED:
        return _("%(grant)s — recommended") % {"grant": name}
    if state == policy.ALLOWED:
        warning = policy.WARNINGS.get(grant)
        if warning:
            return _("%(grant)s — allowed. %(warning)s") % {"grant": name, "warning": warning}
        return _("%(grant)s — allowed") % {"grant": name}
    return _("%(grant)s — forbidden for %(type)s applications by the grant policy") % {
        "grant": name,
        "type": application_type,
    }


def grant_choices(application_type, current=None):
    """GRANT_CHOICES with each label saying the grant's state for ``application_type``."""
    current = current or policy.current_policy()
    return [
        (grant, grant_label(grant, application_type, current[(application_type, grant)]))
        for grant in policy.GRANTS
    ]


class URIListField(forms.CharField):
    """URIs typed one a line (or space-separated), stored space-separated as DOT expects."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 70, "spellcheck": "false"})

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(strip=True, **kwargs)

    def prepare_value(self, value):
        if isinstance(value, str):
            return "\n".join(value.split())
        return value

    def to_python(self, value):
        return " ".join(super().to_python(value).split())

    def has_changed(self, initial, data):
        return " ".join((initial or "").split()) != self.to_python(data)


def validate_origin(origin):
    """A CORS origin: scheme://host[:port], https or http on a loopback host."""
    try:
        parts = urlsplit(origin)
    except ValueError:
        parts = urlsplit("")
    scheme = parts.scheme.lower()
    try:
        hostname = parts.hostname
        parts.port  # raises ValueError for a port that is not a number in range
    except ValueError:
        hostname = None
    if scheme not in {"https", "http"} or not hostname:
        raise forms.ValidationError(
            _("'%(origin)s' is not an origin; write it as https://host[:port].") % {"origin": origin}
        )
    if scheme == "http" and hostname not in LOOPBACK_HOSTS:
        raise forms.ValidationError(
            _("'%(origin)s' uses http on a non-loopback host; use https, or http only with 127.0.0.1, [::1] or localhost.")
            % {"origin": origin}
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise forms.ValidationError(
            _("'%(origin)s' is not an origin: an origin has no path, query, fragment or user.") % {"origin": origin}
        )


class ApplicationForm(forms.ModelForm):
    """An application: its type, the grants its type allows, where it sends users back.

    ``client_secret`` is not a field: the secret is made by ``Application.save()`` and shown
    once by the admin. ``client_id`` is generated and never edited here.
    """

    grant_types = forms.MultipleChoiceField(
        label=_("Grants"),
        choices=policy.GRANT_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_(
            "The grants this application may use, among those its type allows under the grant policy. "
            "Left empty on a new application, the type's recommended grants are used."
        ),
    )
    redirect_uris = URIListField(
        label=_("Redirect URIs"),
        help_text=_(
            "One a line, compared exactly. https; http only on 127.0.0.1, [::1] or localhost; "
            "native applications may also use a reverse-domain private scheme (com.example.app:/callback)."
        ),
    )
    post_logout_redirect_uris = URIListField(
        label=_("Post-logout redirect URIs"),
        help_text=_("One a line; where RP-initiated logout may send the user afterwards. Same rules as redirect URIs."),
    )
    allowed_origins = URIListField(
        label=_("Allowed origins (CORS)"),
        help_text=_("One a line, e.g. https://app.example.com; browsers on these origins may call the token endpoint."),
    )

    class Meta:
        model = Application
        fields = [
            "name",
            "description",
            "application_type",
            "grant_types",
            "redirect_uris",
            "post_logout_redirect_uris",
            "skip_authorization",
            "allowed_origins",
            "backchannel_logout_uri",
            "frontchannel_logout_uri",
        ]
        labels = {"skip_authorization": _("Skip consent")}
        help_texts = {
            "skip_authorization": _(
                "Users are not asked to approve the scopes this application requests. "
                "Only for first-party applications."
            ),
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 2, "cols": 70})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "name" in self.fields:
            self.fields["name"].required = True
        self.policy = policy.current_policy()
        is_new = self.instance._state.adding
        if is_new and "grant_types" not in self.initial:
            self.initial["grant_types"] = policy.recommended_grants(self.chosen_type, self.policy)
        if "grant_types" in self.fields:
            self.fields["grant_types"].choices = grant_choices(self.chosen_type, self.policy)

    @property
    def chosen_type(self):
        """The type the grant labels speak of: the one submitted, else the saved one, else web."""
        if self.is_bound:
            submitted = self.data.get(self.add_prefix("application_type"))
            if submitted in policy.APPLICATION_TYPES:
                return submitted
        if not self.instance._state.adding and self.instance.application_type in policy.APPLICATION_TYPES:
            return self.instance.application_type
        initial = self.initial.get("application_type") or policy.WEB
        return initial if initial in policy.APPLICATION_TYPES else policy.WEB

    def policy_data(self):
        """Every type's grant labels and recommended grants, for the page's script."""
        return {
            "labels": {t: dict(grant_choices(t, self.policy)) for t in policy.APPLICATION_TYPES},
            "states": {t: {g: self.policy[(t, g)] for g in policy.GRANTS} for t in policy.APPLICATION_TYPES},
            "recommended": {t: policy.recommended_grants(t, self.policy) for t in policy.APPLICATION_TYPES},
            "is_new": self.instance._state.adding,
        }

    def clean(self):
        cleaned = super().clean()
        application_type = cleaned.get("application_type")
        if (
            self.instance._state.adding
            and "grant_types" in self.fields
            and not cleaned.get("grant_types")
            and application_type in policy.APPLICATION_TYPES
            and "grant_types" not in self.errors
        ):
            cleaned["grant_types"] = policy.recommended_grants(application_type, self.policy)
        # Application.clean() reports a bad post-logout URI under redirect_uris; checking it
        # here puts the message on its own field, and keeps the bad value off the instance.
        if application_type in policy.APPLICATION_TYPES and cleaned.get("post_logout_redirect_uris"):
            messages = []
            for uri in cleaned["post_logout_redirect_uris"].split():
                try:
                    validate_redirect_uri(uri, application_type)
                except forms.ValidationError as e:
                    messages.extend(e.messages)
            if messages:
                self.add_error("post_logout_redirect_uris", messages)
        # Application.clean() does not call DOT's, so nothing else checks the origins.
        if cleaned.get("allowed_origins"):
            messages = []
            for origin in cleaned["allowed_origins"].split():
                try:
                    validate_origin(origin)
                except forms.ValidationError as e:
                    messages.extend(e.messages)
            if messages:
                self.add_error("allowed_origins", messages)
        return cleaned


# -- the flow chooser ---------------------------------------------------------------------


class FlowCreateForm(forms.Form):
    """The last step of "Which flow do I need?": what the docs cannot guess.

    The type and grants come from the answers (``console.flows.recommend``); the application
    itself is validated by ``ApplicationForm``, so the same rules hold as on the add page.
    """

    name = forms.CharField(label=_("Name"), max_length=255, help_text=_("How users and admins will see the application."))
    redirect_uris = URIListField(
        label=_("Redirect URIs"),
        help_text=_(
            "One a line, compared exactly: where the provider sends users back with the result. https; "
            "http only on 127.0.0.1, [::1] or localhost; native applications may also use a "
            "reverse-domain private scheme (com.example.app:/callback)."
        ),
    )
    extra_grants = forms.MultipleChoiceField(
        label=_("Also allow"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=(),
    )

    def __init__(self, *args, recommendation, **kwargs):
        super().__init__(*args, **kwargs)
        self.recommendation = recommendation
        if recommendation.optional_grants:
            choices = []
            for grant in recommendation.optional_grants:
                label = "%s (%s)" % (dict(policy.GRANT_CHOICES).get(grant, grant), grant)
                reason = recommendation.optional_reasons.get(grant)
                choices.append((grant, "%s — %s" % (label, reason) if reason else label))
            self.fields["extra_grants"].choices = choices
        else:
            del self.fields["extra_grants"]
        if not recommendation.needs_redirect_uris:
            del self.fields["redirect_uris"]
        else:
            self.fields["redirect_uris"].required = True

    def application_data(self):
        """The data an ``ApplicationForm`` validates and saves, from this form's cleaned data."""
        grants = list(self.recommendation.grants) + [
            g for g in self.cleaned_data.get("extra_grants", []) if g not in self.recommendation.grants
        ]
        return {
            "name": self.cleaned_data["name"],
            "description": "",
            "application_type": self.recommendation.application_type,
            "grant_types": grants,
            "redirect_uris": self.cleaned_data.get("redirect_uris", ""),
            "post_logout_redirect_uris": "",
            "allowed_origins": "",
            "backchannel_logout_uri": "",
            "frontchannel_logout_uri": "",
        }


# -- programmatic access accounts ---------------------------------------------------------


def resource_scope_choices(extra=()):
    """(scope, label) for every resource scope (the OIDC end-user scopes are not offered)."""
    offered = {s: d for s, d in all_scopes().items() if s not in OIDC_SCOPE_DESCRIPTIONS}
    choices = [(scope, "%s — %s" % (scope, description)) for scope, description in offered.items()]
    for scope in extra:
        if scope not in offered:
            choices.append((scope, _("%(scope)s — no longer offered by the provider; untick it") % {"scope": scope}))
    return choices


class AccessAccountForm(forms.ModelForm):
    """A machine identity and the resource scopes its AK/SK pairs may ask for."""

    scopes = forms.MultipleChoiceField(
        label=_("Resource permissions"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_(
            "The scopes its key pairs may request with grant_type=client_credentials. A token request "
            "asking for any other scope gets invalid_scope."
        ),
    )
    issue_key = forms.BooleanField(
        label=_("Issue a first key pair now"),
        required=False,
        initial=True,
        help_text=_("The secret key (SK) is shown once, on the next page."),
    )

    class Meta:
        model = AccessAccount
        fields = ["name", "description", "scopes", "is_active"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2, "cols": 70})}
        help_texts = {
            "is_active": _("Inactive accounts keep their key pairs, but none of them gets a token."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        held = [] if self.instance._state.adding else list(self.instance.scopes or [])
        self.fields["scopes"].choices = resource_scope_choices(extra=held)
        if not self.instance._state.adding:
            self.fields.pop("issue_key", None)

    def clean_scopes(self):
        scopes = list(dict.fromkeys(self.cleaned_data.get("scopes") or []))
        errors = access_keys.validate_scopes(scopes)
        if errors:
            raise forms.ValidationError(errors)
        return scopes
