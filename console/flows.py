"""Which flow do I need? The docs' questions, the answers they lead to, and each flow's picture.

Everything here is data and pure functions (no database, no request), so the flow chooser,
its tests and any other front end (the REST API, a CLI wizard) share one decision tree. It
follows the "choose a flow" guidance of Okta and Authing:

- no end user, machine to machine               -> client credentials (service application)
- a backend that keeps a secret, with end users -> authorization code (web application)
- a single-page application                     -> authorization code with PKCE;
                                                   implicit only for browsers without Web Crypto
- a native (mobile, desktop) application        -> authorization code with PKCE
- you own both the application and the resources (first party, trusted with passwords)
                                                -> the resource owner password grant is allowed
"""

import json
import shlex
from dataclasses import dataclass, field
from urllib.parse import quote

from django.utils.translation import gettext_lazy as _

from oidc_provider import policy

YES = "yes"
NO = "no"
YES_NO = ((YES, _("Yes")), (NO, _("No")))

# -- the questions ----------------------------------------------------------------------

BACKEND = "backend"
PUBLIC_CODE = "public_code"
CLIENT_KIND = "client_kind"
WEB_CRYPTO = "web_crypto"
END_USERS = "end_users"
OWN_BOTH = "own_both"


@dataclass(frozen=True)
class Question:
    key: str
    text: str
    help: str
    choices: tuple


QUESTIONS = (
    Question(
        BACKEND,
        _("Does it have a backend?"),
        _(
            "A server you run, where code and secrets stay out of users' reach: a Django, Rails or "
            "Node.js web server, a daemon, a scheduled job."
        ),
        YES_NO,
    ),
    Question(
        PUBLIC_CODE,
        _("Is its code publicly accessible?"),
        _(
            "Does the part that signs users in or calls the provider run where anyone can read it — "
            "JavaScript in the browser, an app installed on a phone or a desktop? Such code cannot "
            "keep a secret, even if there is a backend behind it."
        ),
        YES_NO,
    ),
    Question(
        CLIENT_KIND,
        _("Is it a single-page application or a native application?"),
        _("A single-page application runs in the browser; a native application is installed on a phone or a computer."),
        ((policy.SPA, _("Single-page application (JavaScript in the browser)")),
         (policy.NATIVE, _("Native application (mobile or desktop)"))),
    ),
    Question(
        WEB_CRYPTO,
        _("Does the browser support Web Crypto?"),
        _(
            "PKCE needs SHA-256 in the browser (window.crypto.subtle). Every current browser has it; "
            "only very old ones (e.g. Internet Explorer 10 and older) do not."
        ),
        YES_NO,
    ),
    Question(
        END_USERS,
        _("Are there end users?"),
        _(
            "Do people sign in to it? Answer no when it only calls APIs on its own behalf, machine to "
            "machine: a daemon, a scheduled job, one backend calling another."
        ),
        YES_NO,
    ),
    Question(
        OWN_BOTH,
        _("Do you own both the app and the resources?"),
        _(
            "A first-party application of the organisation that also runs the APIs and the user "
            "accounts, trusted to see users' passwords. A third-party application must never see them."
        ),
        YES_NO,
    ),
)
QUESTIONS_BY_KEY = {q.key: q for q in QUESTIONS}


def _is_public(answers):
    return answers.get(BACKEND) == NO or answers.get(PUBLIC_CODE) == YES


def _is_confidential(answers):
    return answers.get(BACKEND) == YES and answers.get(PUBLIC_CODE) == NO


def applies(key, answers):
    """Whether the question ``key`` is asked, given the answers to the questions before it."""
    if key == BACKEND:
        return True
    if key == PUBLIC_CODE:
        # Without a backend the code runs on users' devices: public by definition.
        return answers.get(BACKEND) == YES
    if key == CLIENT_KIND:
        return _is_public(answers)
    if key == WEB_CRYPTO:
        return _is_public(answers) and answers.get(CLIENT_KIND) == policy.SPA
    if key == END_USERS:
        # A public client always has a user in front of it: it runs on the user's device.
        return _is_confidential(answers)
    if key == OWN_BOTH:
        confidential_with_users = _is_confidential(answers) and answers.get(END_USERS) == YES
        native = _is_public(answers) and answers.get(CLIENT_KIND) == policy.NATIVE
        return confidential_with_users or native
    return False


def clean_answers(raw):
    """The valid answers to the questions that apply, in order; everything else is dropped.

    ``raw`` is any mapping (e.g. ``request.GET``). An answer to a question that no longer
    applies (an earlier answer changed) is dropped, so it cannot steer the outcome.
    """
    answers = {}
    for question in QUESTIONS:
        if not applies(question.key, answers):
            continue
        value = raw.get(question.key)
        if value in {v for v, _label in question.choices}:
            answers[question.key] = value
    return answers


def asked_questions(answers):
    """The questions to show: those answered so far, then the next one (if any)."""
    answers = clean_answers(answers)
    shown = []
    for question in QUESTIONS:
        if not applies(question.key, answers):
            continue
        shown.append(question)
        if question.key not in answers:
            break
    return shown


def next_question(answers):
    """The first question that applies and is not answered yet, or None when all are."""
    answers = clean_answers(answers)
    for question in QUESTIONS:
        if applies(question.key, answers) and question.key not in answers:
            return question
    return None


# -- the answer -------------------------------------------------------------------------

REASONS = {
    "service": _(
        "No end user: the application calls APIs on its own behalf. It authenticates with its own "
        "credentials at the token endpoint (client credentials) and gets an access token — no ID "
        "token, no refresh token, no browser."
    ),
    "web": _(
        "A server-side web application keeps a secret on its backend. The authorization code flow "
        "sends only a short-lived code through the browser; the backend exchanges it for tokens with "
        "its client secret, so tokens never reach the browser."
    ),
    "web_pkce": _("Add PKCE all the same (the OAuth security best practice, RFC 9700): it stops a stolen code from being redeemed."),
    "web_refresh": _("The backend keeps the refresh token and renews access tokens without sending the user to sign in again."),
    "spa": _(
        "A single-page application cannot keep a secret: its code is in every user's browser. The "
        "authorization code flow with PKCE proves, without a secret, that the app redeeming the code "
        "is the one that asked for it (a one-time code_verifier and its SHA-256 code_challenge)."
    ),
    "spa_no_refresh": _("No refresh token in the browser: when the access token expires, the app signs in again silently (prompt=none)."),
    "spa_implicit": _(
        "Without Web Crypto the browser cannot compute the PKCE challenge, so the docs fall back to "
        "the implicit flow: tokens come back in the URL fragment, short-lived, with no refresh token. "
        "Move to authorization code with PKCE as soon as your users' browsers allow."
    ),
    "native": _(
        "A native application cannot keep a secret: anyone can take its binary apart. It uses the "
        "authorization code flow with PKCE in the system browser (RFC 8252) and receives the code on "
        "a private-scheme or loopback redirect URI."
    ),
    "native_refresh": _("The refresh token lives in the device's secure storage (Keychain, Keystore), so users stay signed in."),
    "password": _(
        "You own both the application and the resources, so the resource owner password grant is "
        "allowed: users type their password into your app, which sends it to the token endpoint. Use "
        "it only where a redirect through the browser is not possible; the flows above remain better."
    ),
}


@dataclass(frozen=True)
class Recommendation:
    application_type: str
    grants: tuple
    reasons: tuple
    # Grants the answers allow on top, offered unticked (e.g. password when you own both).
    optional_grants: tuple = ()
    optional_reasons: dict = field(default_factory=dict)
    pkce: bool = False

    @property
    def is_public(self):
        return self.application_type in policy.PUBLIC_TYPES

    @property
    def needs_redirect_uris(self):
        return bool({policy.AUTHORIZATION_CODE, policy.IMPLICIT, policy.HYBRID} & set(self.grants))


def recommend(raw_answers):
    """The docs' answer for complete answers (see ``next_question``), else None."""
    answers = clean_answers(raw_answers)
    if next_question(answers) is not None:
        return None
    own_both = answers.get(OWN_BOTH) == YES
    password = {"optional_grants": (policy.PASSWORD,), "optional_reasons": {policy.PASSWORD: REASONS["password"]}} if own_both else {}
    if _is_confidential(answers):
        if answers[END_USERS] == NO:
            return Recommendation(policy.SERVICE, (policy.CLIENT_CREDENTIALS,), (REASONS["service"],))
        return Recommendation(
            policy.WEB,
            (policy.AUTHORIZATION_CODE, policy.REFRESH_TOKEN),
            (REASONS["web"], REASONS["web_pkce"], REASONS["web_refresh"]),
            pkce=True,
            **password,
        )
    if answers[CLIENT_KIND] == policy.SPA:
        if answers[WEB_CRYPTO] == NO:
            return Recommendation(policy.SPA, (policy.IMPLICIT,), (REASONS["spa_implicit"],))
        return Recommendation(policy.SPA, (policy.AUTHORIZATION_CODE,), (REASONS["spa"], REASONS["spa_no_refresh"]), pkce=True)
    return Recommendation(
        policy.NATIVE,
        (policy.AUTHORIZATION_CODE, policy.REFRESH_TOKEN),
        (REASONS["native"], REASONS["native_refresh"]),
        pkce=True,
        **password,
    )


# -- the pictures -------------------------------------------------------------------------

USER = "user"
APP = "app"
BACKEND_LANE = "backend"
PROVIDER = "provider"
API = "api"


@dataclass(frozen=True)
class Step:
    source: str
    target: str
    text: str


@dataclass(frozen=True)
class Diagram:
    key: str
    title: str
    summary: str
    lanes: tuple  # ((lane key, label), ...), left to right
    steps: tuple

    def steps_in_words(self):
        """[(from, to, text)] with the lanes' labels: the picture as a list, for every reader."""
        labels = dict(self.lanes)
        return [(labels[s.source], labels[s.target], s.text) for s in self.steps]


def _lanes(*pairs):
    return tuple(pairs)


_PROVIDER = (PROVIDER, _("Identity provider"))
_API = (API, _("API (resource server)"))
_BROWSER = (USER, _("User and browser"))

DIAGRAMS = {
    "code_web": Diagram(
        "code_web",
        _("Authorization code (web application with a backend)"),
        _("Only a one-time code passes through the browser; the backend redeems it with its client secret."),
        _lanes(_BROWSER, (BACKEND_LANE, _("Your web app (backend)")), _PROVIDER, _API),
        (
            Step(USER, BACKEND_LANE, _("Clicks “Sign in”")),
            Step(BACKEND_LANE, USER, _("Redirect to /auth: client_id, redirect_uri, scope, state, code_challenge")),
            Step(USER, PROVIDER, _("GET /auth")),
            Step(PROVIDER, USER, _("Login page, then consent")),
            Step(USER, PROVIDER, _("Username, password, approval")),
            Step(PROVIDER, USER, _("Redirect to redirect_uri with code and state")),
            Step(USER, BACKEND_LANE, _("GET /callback?code=…&state=…")),
            Step(BACKEND_LANE, PROVIDER, _("POST /token: code, client secret, code_verifier")),
            Step(PROVIDER, BACKEND_LANE, _("Access token, ID token, refresh token")),
            Step(BACKEND_LANE, API, _("Request with Authorization: Bearer <access token>")),
            Step(API, BACKEND_LANE, _("Data")),
        ),
    ),
    "code_pkce_spa": Diagram(
        "code_pkce_spa",
        _("Authorization code with PKCE (single-page application)"),
        _("No secret in the browser: the code_verifier only the app knows proves it asked for the code."),
        _lanes(_BROWSER, (APP, _("Single-page app")), _PROVIDER, _API),
        (
            Step(USER, APP, _("Clicks “Sign in”")),
            Step(APP, APP, _("Makes a random code_verifier; code_challenge = SHA-256(code_verifier)")),
            Step(APP, PROVIDER, _("Redirect to /auth with code_challenge (S256)")),
            Step(PROVIDER, USER, _("Login page, then consent")),
            Step(USER, PROVIDER, _("Username, password, approval")),
            Step(PROVIDER, APP, _("Redirect to redirect_uri with code")),
            Step(APP, PROVIDER, _("POST /token: code, code_verifier (no secret)")),
            Step(PROVIDER, PROVIDER, _("Checks SHA-256(code_verifier) = code_challenge")),
            Step(PROVIDER, APP, _("Access token, ID token")),
            Step(APP, API, _("Request with Authorization: Bearer <access token>")),
            Step(API, APP, _("Data")),
        ),
    ),
    "code_pkce_native": Diagram(
        "code_pkce_native",
        _("Authorization code with PKCE (native application)"),
        _("Sign-in happens in the system browser; the code comes back to the app, which proves with PKCE that it asked."),
        _lanes((USER, _("User and system browser")), (APP, _("Native app")), _PROVIDER, _API),
        (
            Step(USER, APP, _("Taps “Sign in”")),
            Step(APP, APP, _("Makes a random code_verifier; code_challenge = SHA-256(code_verifier)")),
            Step(APP, USER, _("Opens the system browser at /auth with code_challenge (S256)")),
            Step(USER, PROVIDER, _("GET /auth")),
            Step(PROVIDER, USER, _("Login page, then consent")),
            Step(PROVIDER, APP, _("Redirect to the app's redirect URI (private scheme or loopback) with code")),
            Step(APP, PROVIDER, _("POST /token: code, code_verifier (no secret)")),
            Step(PROVIDER, APP, _("Access token, ID token, refresh token")),
            Step(APP, API, _("Request with Authorization: Bearer <access token>")),
            Step(API, APP, _("Data")),
        ),
    ),
    "implicit": Diagram(
        "implicit",
        _("Implicit (single-page application in an old browser)"),
        _("Tokens come straight back in the URL fragment; no code, no refresh token. Only without Web Crypto."),
        _lanes(_BROWSER, (APP, _("Single-page app")), _PROVIDER, _API),
        (
            Step(USER, APP, _("Clicks “Sign in”")),
            Step(APP, PROVIDER, _("Redirect to /auth: response_type=id_token token, nonce")),
            Step(PROVIDER, USER, _("Login page, then consent")),
            Step(USER, PROVIDER, _("Username, password, approval")),
            Step(PROVIDER, APP, _("Redirect with #access_token=…&id_token=… in the fragment")),
            Step(APP, APP, _("Checks the ID token: signature, nonce, at_hash")),
            Step(APP, API, _("Request with Authorization: Bearer <access token>")),
            Step(API, APP, _("Data")),
        ),
    ),
    "hybrid": Diagram(
        "hybrid",
        _("Hybrid (code and ID token at once)"),
        _("The backend learns who signed in from the ID token at once, then redeems the code with its secret."),
        _lanes(_BROWSER, (BACKEND_LANE, _("Your web app (backend)")), _PROVIDER, _API),
        (
            Step(USER, BACKEND_LANE, _("Clicks “Sign in”")),
            Step(BACKEND_LANE, USER, _("Redirect to /auth: response_type=code id_token, nonce")),
            Step(USER, PROVIDER, _("GET /auth, login, consent")),
            Step(PROVIDER, USER, _("code and ID token (fragment or form_post)")),
            Step(USER, BACKEND_LANE, _("POST code and ID token to the callback")),
            Step(BACKEND_LANE, BACKEND_LANE, _("Checks the ID token: signature, nonce, c_hash")),
            Step(BACKEND_LANE, PROVIDER, _("POST /token: code, client secret")),
            Step(PROVIDER, BACKEND_LANE, _("Access token, ID token, refresh token")),
            Step(BACKEND_LANE, API, _("Request with Authorization: Bearer <access token>")),
            Step(API, BACKEND_LANE, _("Data")),
        ),
    ),
    "password": Diagram(
        "password",
        _("Resource owner password (first-party application)"),
        _("The user types the password into your own app; only when you own both the app and the resources."),
        _lanes((USER, _("User")), (APP, _("Your app")), _PROVIDER, _API),
        (
            Step(USER, APP, _("Types username and password into the app")),
            Step(APP, PROVIDER, _("POST /token: grant_type=password, username, password (+ client secret)")),
            Step(PROVIDER, APP, _("Access token, ID token, refresh token")),
            Step(APP, API, _("Request with Authorization: Bearer <access token>")),
            Step(API, APP, _("Data")),
        ),
    ),
    "client_credentials": Diagram(
        "client_credentials",
        _("Client credentials (machine to machine)"),
        _("No user and no browser: the service authenticates as itself and gets an access token only."),
        _lanes((BACKEND_LANE, _("Your service")), _PROVIDER, _API),
        (
            Step(BACKEND_LANE, PROVIDER, _("POST /token: grant_type=client_credentials, scope; client ID and secret (HTTP Basic)")),
            Step(PROVIDER, PROVIDER, _("Checks the credentials and the scopes it may have")),
            Step(PROVIDER, BACKEND_LANE, _("Access token (no ID token, no refresh token)")),
            Step(BACKEND_LANE, API, _("Request with Authorization: Bearer <access token>")),
            Step(API, BACKEND_LANE, _("Data")),
        ),
    ),
    "refresh_token": Diagram(
        "refresh_token",
        _("Refresh token"),
        _("A new access token without the user: each refresh token works once and is replaced (rotation)."),
        _lanes((APP, _("Your app")), _PROVIDER, _API),
        (
            Step(APP, API, _("Request with an expired access token")),
            Step(API, APP, _("401 invalid_token")),
            Step(APP, PROVIDER, _("POST /token: grant_type=refresh_token, refresh_token (+ client auth)")),
            Step(PROVIDER, APP, _("New access token and a new refresh token; the old one stops working")),
            Step(APP, API, _("The request again, with the new access token")),
            Step(API, APP, _("Data")),
        ),
    ),
}


def diagram_key(grant, application_type):
    """Which picture shows ``grant`` as an application of ``application_type`` uses it."""
    if grant == policy.AUTHORIZATION_CODE:
        if application_type == policy.SPA:
            return "code_pkce_spa"
        if application_type == policy.NATIVE:
            return "code_pkce_native"
        return "code_web"
    return grant if grant in DIAGRAMS else None


def diagrams_for(application_type, grants):
    """The pictures of an application's grants, in the docs' grant order, without repeats."""
    keys = []
    for grant in policy.GRANTS:
        if grant in (grants or ()):
            key = diagram_key(grant, application_type)
            if key and key not in keys:
                keys.append(key)
    return [DIAGRAMS[k] for k in keys]


# -- the snippets shown after creating --------------------------------------------------

SECRET_PLACEHOLDER = "<CLIENT_SECRET>"
DEFAULT_USER_SCOPE = "openid profile email"


@dataclass(frozen=True)
class Snippet:
    key: str
    title: str
    language: str
    text: str
    note: str = ""


def endpoints(issuer):
    issuer = issuer.rstrip("/")
    return {
        "issuer": issuer,
        "discovery": f"{issuer}/.well-known/openid-configuration",
        "authorization": f"{issuer}/auth",
        "token": f"{issuer}/token",
        "userinfo": f"{issuer}/me",
        "jwks": f"{issuer}/.well-known/jwks.json",
    }


def _q(value):
    return shlex.quote(value)


def _py(value):
    """A Python string literal in double quotes (JSON's string syntax is Python's too)."""
    return json.dumps(str(value), ensure_ascii=False)


def _query(params):
    # Placeholders such as <STATE> stay readable (they are replaced before use).
    return "&".join(f"{k}={quote(str(v), safe='<>:/')}" for k, v in params)


def client_credentials_curl(token_endpoint, client_id, secret, scope="read"):
    """The one-liner that gets a client-credentials token (the docs' example)."""
    return f"curl -u {_q(f'{client_id}:{secret}')} -d grant_type=client_credentials -d {_q(f'scope={scope}')} {token_endpoint}"


def snippets(*, issuer, client_id, application_type, grants, redirect_uris=(), secret=None, scope=None):
    """Ready-to-paste snippets for an application's flows.

    ``secret`` is the client secret in clear when it is being shown (once), else None: the
    snippets then carry a placeholder. Public clients never have one.
    """
    ep = endpoints(issuer)
    public = application_type in policy.PUBLIC_TYPES
    shown_secret = None if public else (secret or SECRET_PLACEHOLDER)
    redirect_uri = (list(redirect_uris) or ["https://app.example.com/callback"])[0]
    grants = list(grants or ())
    out = []

    if policy.CLIENT_CREDENTIALS in grants and not public:
        out.append(Snippet(
            "client_credentials",
            _("Client credentials: get a token with curl"),
            "shell",
            client_credentials_curl(ep["token"], client_id, shown_secret, scope or "read"),
            _("The answer is JSON with access_token; send it to your API as Authorization: Bearer <access_token>."),
        ))

    if policy.AUTHORIZATION_CODE in grants:
        auth_params = [
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("scope", scope or DEFAULT_USER_SCOPE),
            ("state", "<STATE>"),
            ("code_challenge", "<CODE_CHALLENGE>"),
            ("code_challenge_method", "S256"),
        ]
        out.append(Snippet(
            "pkce_pair",
            _("PKCE: make a code_verifier and its code_challenge"),
            "shell",
            "CODE_VERIFIER=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')\n"
            "CODE_CHALLENGE=$(python3 -c 'import base64, hashlib, sys; print(base64.urlsafe_b64encode("
            "hashlib.sha256(sys.argv[1].encode()).digest()).rstrip(b\"=\").decode())' \"$CODE_VERIFIER\")\n"
            "echo \"$CODE_CHALLENGE\"",
            _("A new pair for every sign-in; keep the verifier in the shell until the token call."),
        ))
        out.append(Snippet(
            "authorize_url",
            _("Authorization code with PKCE: send the user's browser to"),
            "url",
            f"{ep['authorization']}?{_query(auth_params)}",
            _("Replace <STATE> with a random value you check on return, and <CODE_CHALLENGE> with the challenge above."),
        ))
        lines = [f"curl -X POST {ep['token']} \\"]
        if shown_secret:
            lines.append(f"  -u {_q(f'{client_id}:{shown_secret}')} \\")
        else:
            lines.append(f"  -d client_id={_q(client_id)} \\")
        lines += [
            "  -d grant_type=authorization_code \\",
            '  -d "code=$CODE" \\',
            f"  --data-urlencode redirect_uri={_q(redirect_uri)} \\",
            '  -d "code_verifier=$CODE_VERIFIER"',
        ]
        out.append(Snippet(
            "token_curl",
            _("Authorization code: exchange the code for tokens"),
            "shell",
            "\n".join(lines),
            _("Set CODE to the code parameter the browser brought back to your redirect URI (CODE='…'); it works once, within a minute."),
        ))

    if policy.IMPLICIT in grants:
        params = [
            ("response_type", "id_token token"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("scope", scope or DEFAULT_USER_SCOPE),
            ("state", "<STATE>"),
            ("nonce", "<NONCE>"),
        ]
        out.append(Snippet(
            "implicit_url",
            _("Implicit: send the user's browser to"),
            "url",
            f"{ep['authorization']}?{_query(params)}",
            _("The tokens come back in the URL fragment; check the ID token's nonce."),
        ))

    if policy.HYBRID in grants:
        params = [
            ("response_type", "code id_token"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("scope", scope or DEFAULT_USER_SCOPE),
            ("state", "<STATE>"),
            ("nonce", "<NONCE>"),
            ("response_mode", "form_post"),
        ]
        out.append(Snippet(
            "hybrid_url",
            _("Hybrid: send the user's browser to"),
            "url",
            f"{ep['authorization']}?{_query(params)}",
            "",
        ))

    if policy.PASSWORD in grants:
        auth = f"-u {_q(f'{client_id}:{shown_secret}')}" if shown_secret else f"-d client_id={_q(client_id)}"
        out.append(Snippet(
            "password_curl",
            _("Resource owner password: get tokens with curl"),
            "shell",
            f"curl -X POST {ep['token']} \\\n  {auth} \\\n  -d grant_type=password \\\n"
            f'  -d "username=$OIDC_USERNAME" --data-urlencode "password=$OIDC_PASSWORD" \\\n'
            f"  -d {_q('scope=' + (scope or DEFAULT_USER_SCOPE))}",
            _("Set OIDC_USERNAME and OIDC_PASSWORD in the shell first."),
        ))

    if policy.REFRESH_TOKEN in grants:
        auth = f"-u {_q(f'{client_id}:{shown_secret}')}" if shown_secret else f"-d client_id={_q(client_id)}"
        out.append(Snippet(
            "refresh_curl",
            _("Refresh token: get a new access token"),
            "shell",
            f"curl -X POST {ep['token']} \\\n  {auth} \\\n  -d grant_type=refresh_token \\\n  -d \"refresh_token=$REFRESH_TOKEN\"",
            _("Set REFRESH_TOKEN first. The answer carries a new refresh token; the one you sent stops working."),
        ))

    if policy.AUTHORIZATION_CODE in grants and application_type == policy.WEB:
        out.append(Snippet(
            "authlib",
            _("Authlib (Django or Flask client)"),
            "python",
            "\n".join([
                "import os",
                "from authlib.integrations.django_client import OAuth  # or authlib.integrations.flask_client",
                "",
                "oauth = OAuth()",
                "oauth.register(",
                '    name="identity",',
                f"    client_id={_py(client_id)},",
                '    client_secret=os.environ["OIDC_CLIENT_SECRET"],',
                f"    server_metadata_url={_py(ep['discovery'])},",
                f'    client_kwargs={{"scope": {_py((scope or DEFAULT_USER_SCOPE))}, "code_challenge_method": "S256"}},',
                ")",
            ]),
            _("Set OIDC_CLIENT_SECRET in the environment to the client secret; keep it out of version control."),
        ))
        out.append(Snippet(
            "mozilla_django_oidc",
            _("mozilla-django-oidc (settings.py)"),
            "python",
            "\n".join([
                "import os",
                "",
                'INSTALLED_APPS += ["mozilla_django_oidc"]',
                "AUTHENTICATION_BACKENDS = [",
                '    "mozilla_django_oidc.auth.OIDCAuthenticationBackend",',
                '    "django.contrib.auth.backends.ModelBackend",',
                "]",
                "",
                f"OIDC_RP_CLIENT_ID = {_py(client_id)}",
                'OIDC_RP_CLIENT_SECRET = os.environ["OIDC_RP_CLIENT_SECRET"]',
                'OIDC_RP_SIGN_ALGO = "RS256"',
                f"OIDC_RP_SCOPES = {_py((scope or DEFAULT_USER_SCOPE))}",
                "OIDC_USE_PKCE = True",
                f"OIDC_OP_AUTHORIZATION_ENDPOINT = {_py(ep['authorization'])}",
                f"OIDC_OP_TOKEN_ENDPOINT = {_py(ep['token'])}",
                f"OIDC_OP_USER_ENDPOINT = {_py(ep['userinfo'])}",
                f"OIDC_OP_JWKS_ENDPOINT = {_py(ep['jwks'])}",
            ]),
            _("Its callback is /oidc/callback/ on your site: register that full URL as a redirect URI. "
              "Set OIDC_RP_CLIENT_SECRET in the environment to the client secret."),
        ))
    return out
