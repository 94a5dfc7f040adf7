"""The authorization endpoint (OIDC Core 3.1.2).

Each check is one named step, run in order, as node oidc-provider does: the client and
redirect URI first (an error page, never a redirect, and before any login page), then the
session (login, prompt, max_age, id_token_hint), then consent.
"""

import json
import re
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import jwt
from django import forms
from django.contrib.auth.views import redirect_to_login
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import View
from oauth2_provider.compat import login_not_required
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.forms import AllowForm
from oauth2_provider.models import get_grant_model
from oauth2_provider.oauth2_validators import is_valid_resource_uri
from oauth2_provider.views import AuthorizationView
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views.mixins import OAuthLibMixin
from oauthlib.oauth2.rfc6749.errors import AccessDeniedError

from .. import claims, keys, refusals, sessions
from ..conf import oidc_settings
from ..models import Consent
from ..policy import normalise_response_type
from ..scopes import describe
from ..applications import cached_application
from .decorated import DecoratedView
from .guards import reject_malformed_input
from .pages import hosted_page

SESSION_AUTH_TIME = "oidc_auth_time"
# The error_description of a declined consent (RFC 6749 §4.1.2.1: ASCII, for the client's developer).
DENIED = "The user declined to authorize this client."
RESPONSE_MODES = ("query", "fragment", "form_post")
# RFC 7636 §4.2: 43-128 characters of the unreserved set (an S256 challenge is 43).
CODE_CHALLENGE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def record_auth_time(sender, request, user, **kwargs):
    """user_logged_in receiver: auth_time and max_age need when this session really
    authenticated (OIDC Core 2)."""
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_AUTH_TIME] = int(time.time())


def session_auth_time(request):
    """When the user last actually authenticated in this session (epoch seconds)."""
    value = request.session.get(SESSION_AUTH_TIME)
    if value is None and request.user.last_login:
        value = int(request.user.last_login.timestamp())
    return value or 0


class ConsentForm(AllowForm):
    """DOT's consent form, carrying the response mode through the consent page too."""

    response_mode = forms.CharField(required=False, widget=forms.HiddenInput())

    def clean_claims(self):
        try:
            return claims.parse_claims_request(self.cleaned_data.get("claims")) or None
        except ValueError as e:
            raise forms.ValidationError(str(e))


class _Interaction(Exception):
    """An authentication error to send back to the client (OIDC Core 3.1.2.6), and the rule
    that refused it (oidc_provider.refusals)."""

    def __init__(self, error, description, rule=refusals.REQUEST_INVALID):
        self.error, self.description, self.rule = error, description, rule


def check_stored_parameters(params):
    """The parameters a code carries to the token endpoint, checked before anything is stored
    or shown: a value its column cannot hold would fail on the way into the database."""
    challenge = params.get("code_challenge")
    if challenge and not CODE_CHALLENGE.fullmatch(challenge):
        raise _Interaction(
            "invalid_request",
            "code_challenge must be 43 to 128 characters of A-Z, a-z, 0-9, '-', '.', '_' and '~' (RFC 7636 4.2); "
            "send BASE64URL(SHA256(code_verifier)) without padding.",
            refusals.PKCE_CHALLENGE_MALFORMED,
        )
    nonce_length = get_grant_model()._meta.get_field("nonce").max_length
    if len(params.get("nonce") or "") > nonce_length:
        raise _Interaction("invalid_request", f"nonce is longer than {nonce_length} characters; send a shorter one.")
    resources = params.getlist("resource") if hasattr(params, "getlist") else (params.get("resource") or "").split()
    for resource in resources:
        # One resource per parameter (RFC 8707 §2); the consent form carries them space-separated.
        if not is_valid_resource_uri(resource) or any(c.isspace() for c in resource):
            raise _Interaction(
                "invalid_target",
                f"The resource parameter '{resource[:200]}' is not a resource indicator: send an absolute URI "
                "with a scheme and host, without a fragment (RFC 8707 2).",
            )
    return resources


def check_no_request_object(params):
    """OIDC Core 6: discovery says request objects are not supported, so a request that sends
    one is refused rather than served without the parameters it holds."""
    if params.get("request"):
        raise _Interaction("request_not_supported", "This provider does not take the request parameter (a request "
                           "object, OIDC Core 6.1); send the authorization parameters themselves.",
                           refusals.REQUEST_OBJECT_NOT_SUPPORTED)
    if params.get("request_uri"):
        raise _Interaction("request_uri_not_supported", "This provider does not take the request_uri parameter "
                           "(OIDC Core 6.2); send the authorization parameters themselves.",
                           refusals.REQUEST_OBJECT_NOT_SUPPORTED)


class AuthorizeView(DecoratedView, AuthorizationView):
    # A relying party's POST carries no CSRF token (our consent form does: see post()), and
    # a site's LoginRequiredMiddleware must not answer for prompt=none (OIDC Core 3.1.2.6).
    view_decorators = (csrf_exempt, never_cache, login_not_required, hosted_page, reject_malformed_input(html=True))
    template_name = "oidc_provider/consent.html"
    form_class = ConsentForm
    response_mode = None
    redirect_uri = None
    error_template_name = "oidc_provider/error.html"

    def dispatch(self, request, *args, **kwargs):
        # Not LoginRequiredMixin's dispatch: the client must be checked before any login page.
        self.oauth2_data = {}
        return View.dispatch(self, request, *args, **kwargs)

    def get(self, request, *args, **kwargs):
        return self.authorize(request, request.GET)

    def post(self, request, *args, **kwargs):
        if "consent_form" in request.POST:
            # Our own consent form carries CSRF; a relying party's POST (OIDC Core 3.1.2.1) does not.
            refused = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
            if refused:
                return refused
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            return self.consent_given(request)
        return self.authorize(request, request.POST)

    # -- steps ---------------------------------------------------------------------

    def authorize(self, request, params):
        try:
            scopes, credentials = self.validate_authorization_request(request)
        except OAuthToolkitError as error:
            return self.error_response(error, application=None)
        # Validation found it; the per-process copy saves reading it again.
        application = cached_application(credentials["client_id"])
        prompt = set(params.get("prompt", "").split())
        self.response_mode = params.get("response_mode") or None
        self.redirect_uri = credentials["redirect_uri"]
        try:
            check_no_request_object(params)
            resources = check_stored_parameters(params)
            if resources:
                # oauthlib leaves out the resource indicators (RFC 8707); the code keeps them.
                credentials["resource"] = resources
            self.check_response_mode(credentials["response_type"], self.response_mode)
            response = self.check_session(request, params, prompt)
            if response is not None:
                return response
            self.check_id_token_hint(request, params)
            self.check_requested_subject(request, credentials)
            if self.needs_consent(request, application, scopes, prompt):
                if "none" in prompt:
                    raise _Interaction("consent_required", "The user has not consented to this client for these scopes.",
                                       refusals.CONSENT_REQUIRED)
                return self.show_consent(request, application, scopes, credentials)
        except _Interaction as e:
            refusals.authorization_refused(request, params, e.error, e.description, application, rule=e.rule)
            return self.redirect_error(application, credentials, e.error, e.description)
        return self.issue(request, application, scopes, credentials)

    def check_response_mode(self, response_type, mode):
        """OAuth 2.0 Multiple Response Types §2.1 and Form Post Response Mode."""
        if mode is None:
            return
        if mode not in RESPONSE_MODES:
            self.response_mode = None
            raise _Interaction("invalid_request", f"response_mode={mode} is not supported; use one of {', '.join(RESPONSE_MODES)}.",
                               refusals.RESPONSE_MODE_NOT_ALLOWED)
        if mode == "query" and normalise_response_type(response_type) != "code":
            # Tokens in a query string end up in logs and Referer headers.
            self.response_mode = None
            raise _Interaction("invalid_request", "response_mode=query cannot carry tokens; use fragment or form_post.",
                               refusals.RESPONSE_MODE_NOT_ALLOWED)

    def check_session(self, request, params, prompt):
        """Login, prompt=login and max_age: send the user to log in when they must."""
        if not request.user.is_authenticated:
            if "none" in prompt:
                raise _Interaction("login_required", "The user is not logged in.", refusals.LOGIN_REQUIRED)
            return self.login_redirect(request, params)
        if "login" in prompt:
            return self.login_redirect(request, params)
        max_age = params.get("max_age")
        if max_age not in (None, ""):
            try:
                max_age = int(max_age)
                if max_age < 0:
                    raise ValueError
            except ValueError:
                raise _Interaction("invalid_request", "max_age must be a whole number of seconds, 0 or more.")
            if time.time() - session_auth_time(request) > max_age:
                if "none" in prompt:
                    raise _Interaction("login_required", "The user's login is older than max_age allows.", refusals.LOGIN_REQUIRED)
                return self.login_redirect(request, params)
        return None

    def check_id_token_hint(self, request, params):
        hint = params.get("id_token_hint")
        if not hint:
            return
        try:
            # An expired ID token is still a fine hint about who the user is.
            hinted = keys.verify(hint, verify_exp=False)
        except jwt.InvalidTokenError:
            raise _Interaction("invalid_request", "id_token_hint is not an ID token this provider issued.", refusals.ID_TOKEN_HINT_INVALID)
        if hinted.get("sub") != claims.subject(request.user):
            raise _Interaction("login_required", "The logged-in user is not the user of id_token_hint.", refusals.OTHER_USER)

    def check_requested_subject(self, request, credentials):
        """OIDC Core 5.5.1: a claims request naming a `sub` value gets a positive answer only
        for that user."""
        wanted = claims.requested_subject(credentials.get("claims"))
        if wanted is not None and wanted != claims.subject(request.user):
            raise _Interaction("login_required", "The logged-in user is not the user whose sub the claims parameter asks for.",
                               refusals.OTHER_USER)

    def needs_consent(self, request, application, scopes, prompt):
        # select_account: the consent page names the signed-in account and offers to switch
        # it, so it is where the person selects one (OIDC Core 3.1.2.1).
        if prompt & {"consent", "select_account"}:
            return True
        if application.skip_authorization:
            return False
        consent = Consent.objects.filter(user=request.user, application=application).first()
        return consent is None or not consent.covers(scopes)

    def get_initial(self):
        initial = {**super().get_initial(), "response_mode": self.oauth2_data.get("response_mode")}
        if initial.get("claims"):
            initial["claims"] = json.dumps(initial["claims"])  # a hidden field of the consent form
        return initial

    def show_consent(self, request, application, scopes, credentials):
        self.oauth2_data = {
            **credentials,
            # One hidden field, space-separated, as DOT's consent form reads it back.
            "resource": " ".join(credentials.get("resource", [])) or None,
            "response_mode": self.response_mode,
            "scopes": scopes,
            "application": application,
        }
        form = self.get_form(self.get_form_class())
        context = {
            "form": form,
            "application": application,
            "scopes": [{"name": s, "description": describe(s)} for s in scopes],
        }
        return self.render_to_response(self.get_context_data(**context))

    def consent_given(self, request):
        form = self.get_form(self.get_form_class())
        if not form.is_valid():
            return self.render_error(_("The consent form was incomplete. Start again from the application."), status=400)
        self.response_mode = form.cleaned_data.get("response_mode") or None
        self.redirect_uri = form.cleaned_data["redirect_uri"]
        try:
            check_stored_parameters(form.cleaned_data)
            self.check_response_mode(form.cleaned_data["response_type"], self.response_mode)
        except _Interaction as e:
            refusals.authorization_refused(request, request.POST, e.error, e.description, rule=e.rule)
            return self.render_error(e.description)
        if form.cleaned_data.get("allow"):
            application = cached_application(form.cleaned_data["client_id"])
            if application is not None:
                consent, _created = Consent.objects.get_or_create(user=request.user, application=application)
                consent.scope = " ".join(sorted(set(consent.scope.split()) | set(form.cleaned_data["scope"].split())))
                consent.save()
        return self.form_valid(form)

    def issue(self, request, application, scopes, credentials):
        try:
            uri, headers, body, status = self.create_authorization_response(
                request=request, scopes=" ".join(scopes), credentials=credentials, allow=True
            )
        except OAuthToolkitError as error:
            return self.error_response(error, application)
        return self.redirect(uri, application)

    def create_authorization_response(self, request, scopes, credentials, allow):
        if allow:
            # Both ways here (consent given, or none needed) issue within the login session.
            credentials = {**credentials, "login_session": sessions.current(request)}
        return super().create_authorization_response(request, scopes, credentials, allow)

    # -- responses ------------------------------------------------------------------

    def login_redirect(self, request, params):
        """To the login page; back here afterwards without the parameters that forced it."""
        kept = [
            (key, value)
            for key, values in params.lists()
            if key not in ("prompt", "max_age", "csrfmiddlewaretoken")
            for value in values
        ]
        prompt = [p for p in params.get("prompt", "").split() if p not in ("login", "none")]
        if prompt:
            kept.append(("prompt", " ".join(prompt)))
        response = redirect_to_login(f"{request.path}?{urlencode(kept)}")
        # The login page pre-fills the hint and speaks the asked language.
        hints = {key: params[key] for key in ("login_hint", "ui_locales") if params.get(key)}
        if hints:
            response["Location"] += "&" + urlencode(hints)
        return response

    def redirect_error(self, application, credentials, error, description):
        redirect_uri = credentials["redirect_uri"]
        payload = {"error": error}
        if description:  # never an empty error_description=
            payload["error_description"] = description
        if credentials.get("state"):
            payload["state"] = credentials["state"]
        # RFC 9207 2: error responses carry the issuer too, like successful ones.
        payload["iss"] = oauth2_settings.OIDC_ISS_ENDPOINT or oidc_settings.issuer
        # Errors travel where the response would have (OAuth 2.0 Multiple Response Types §5).
        mode = self.response_mode or ("query" if normalise_response_type(credentials.get("response_type")) == "code" else "fragment")
        if mode == "fragment":
            url = f"{redirect_uri}#{urlencode(payload)}"
        else:
            url = redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(payload)
        return self.redirect(url, application, redirect_uri=redirect_uri)

    def redirect(self, redirect_to, application, redirect_uri=None):
        if getattr(self, "response_mode", None) == "form_post":
            return self.form_post(redirect_to, redirect_uri or self.redirect_uri)
        return super().redirect(redirect_to, application)

    def form_post(self, redirect_to, redirect_uri):
        """OAuth 2.0 Form Post Response Mode: the response as a self-submitting form."""
        target = urlsplit(redirect_to)
        registered_query = set(parse_qsl(urlsplit(redirect_uri).query, keep_blank_values=True))
        fields = [p for p in parse_qsl(target.query, keep_blank_values=True) if p not in registered_query]
        fields += parse_qsl(target.fragment, keep_blank_values=True)
        action = urlunsplit(target._replace(fragment="", query=urlsplit(redirect_uri).query))
        return render(self.request, "oidc_provider/form_post.html", {"action": action, "fields": fields})

    def error_response(self, error, application, **kwargs):
        redirect, error_response = OAuthLibMixin.error_response(self, error, **kwargs)
        oauth_error = error_response["error"]
        if isinstance(oauth_error, AccessDeniedError) and not oauth_error.description:
            oauth_error.description = DENIED
        params = self.request.POST if self.request.method == "POST" else self.request.GET
        refusals.authorization_refused(self.request, params, oauth_error, oauth_error.description, application)
        # oauthlib raises some errors (a malformed claims parameter) without the request, so
        # without the redirect URI it checked: the error page then, never a redirect to nowhere.
        if redirect and oauth_error.redirect_uri:
            credentials = {
                "redirect_uri": oauth_error.redirect_uri,
                "response_type": oauth_error.response_type or "code",
                "state": oauth_error.state,
            }
            return self.redirect_error(application, credentials, oauth_error.error, oauth_error.description)
        return self.render_error(
            oauth_error.description or oauth_error.error, status=oauth_error.status_code or 400, code=oauth_error.error
        )

    def render_error(self, message, status=400, code="invalid_request"):
        return render(
            self.request,
            self.error_template_name,
            {"error": code, "error_description": message},
            status=status,
        )
