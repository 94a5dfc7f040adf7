"""Operations on applications (relying parties): register, delete, regenerate a secret.

Each sends its signal (signals.py) inside its transaction, so an audit record of it commits
with the change or not at all; ``actor`` is the user who asked, or None for the CLI.
"""

from django.db import transaction

from . import config_cache, cors, policy, signals
from .models import Application

CLIENT_ID_MAX_LENGTH = Application._meta.get_field("client_id").max_length


def cached_application(client_id):
    """The Application with this client_id, or None, from the per-process copy (config_cache)."""
    return config_cache.get(("application", client_id), lambda: Application.objects.filter(client_id=client_id).first())

# Set by Application.save() from the application type and grants; excluded from
# full_clean() because they are derived, not chosen.
DERIVED_FIELDS = ["client_type", "authorization_grant_type"]


def create(*, name, application_type, grants=None, redirect_uris=(), post_logout_redirect_uris=(),
           allowed_origins=(), backchannel_logout_uri="", frontchannel_logout_uri="", skip_consent=False, actor=None):
    """Validate and save a new application; raises ValidationError and saves nothing when refused.

    With no grants, the type's recommended grants under the current policy. A confidential
    application's secret is on ``plaintext_secret`` of the returned instance, and nowhere else.
    """
    if grants is None:
        grants = policy.recommended_grants(application_type) if application_type in policy.APPLICATION_TYPES else []
    app = Application(
        name=name.strip(),
        application_type=application_type,
        # Canonical order, no duplicates, whatever order the options came in.
        grant_types=sorted(set(grants), key=lambda g: policy.GRANTS.index(g) if g in policy.GRANTS else len(policy.GRANTS)),
        redirect_uris=" ".join(redirect_uris),
        post_logout_redirect_uris=" ".join(post_logout_redirect_uris),
        allowed_origins=" ".join(allowed_origins),
        backchannel_logout_uri=backchannel_logout_uri or "",
        frontchannel_logout_uri=frontchannel_logout_uri or "",
        skip_authorization=skip_consent,
    )
    app.full_clean(exclude=DERIVED_FIELDS)
    return register(app, actor=actor)


# Browser and native apps call the token endpoint from their own origin.
ORIGINS_FROM_REDIRECTS = (policy.SPA, policy.NATIVE)


def default_origins(application):
    """An SPA or a native app given no allowed origins gets those of its redirect URIs."""
    if not application.allowed_origins and application.application_type in ORIGINS_FROM_REDIRECTS:
        application.allowed_origins = " ".join(cors.origins_of(application.redirect_uris.split()))


def register(application, actor=None):
    """Save a new, already validated application and announce it; returns it. An SPA or a
    native app given no allowed origins gets those of its redirect URIs."""
    default_origins(application)
    with transaction.atomic():
        application.save()
        signals.application_created.send(sender=Application, application=application, actor=actor)
    return application


def delete(application, actor=None):
    """Delete the application with its tokens, codes and consents."""
    with transaction.atomic():
        # Sent first: receivers still see the application as it was, with its primary key.
        signals.application_deleted.send(sender=Application, application=application, actor=actor)
        application.delete()


def regenerate_secret(application, actor=None):
    """Give a confidential application a new secret; returns it (the only time it is seen).

    The old secret stops working at once. ValueError for a public application: it has none.
    """
    if application.is_public:
        raise ValueError(
            f"'{application.name}' is a public ({application.application_type}) application: it has no secret "
            "and authenticates with PKCE."
        )
    with transaction.atomic():
        secret = application.set_new_secret()
        application.save(update_fields=["client_secret"])
        signals.client_secret_regenerated.send(sender=Application, application=application, actor=actor)
    return secret
