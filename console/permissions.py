"""Who may do what in the console: the one table the admin pages and the REST API both consult.

Every console action is named here with the Django permissions it needs: the model
permissions (``view_``/``add_``/``change_``/``delete_``) for plain reads and edits, and a
named permission for each dangerous action (regenerating a client secret, issuing or
revoking an access key, rotating or retiring a signing key, changing the grant policy,
revoking tokens). Those named permissions are declared on the provider's models
(``Meta.permissions``), so a site that does not install the console still has them.

Only active staff users use the console at all; a superuser has every permission (Django's
``has_perm``). The three shipped roles are Django groups, made by a migration and re-made by
``manage.py console_roles``.
"""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.core.exceptions import PermissionDenied
from django.db.models import Q

P = "oidc_provider."
DOT = "oauth2_provider."

# action -> the permissions it needs, all of them.
ACTIONS = {
    # Entering the console (the API's root, schema and docs): staff, no model permission.
    "console.enter": frozenset(),
    "application.view": frozenset({P + "view_application"}),
    "application.add": frozenset({P + "add_application"}),
    "application.change": frozenset({P + "change_application"}),
    "application.delete": frozenset({P + "delete_application"}),
    "application.regenerate_secret": frozenset({P + "regenerate_secret"}),
    "tokens.revoke": frozenset({P + "revoke_tokens"}),
    "policy.view": frozenset({P + "view_grantpolicy"}),
    "policy.change": frozenset({P + "change_grantpolicy"}),
    "access_account.view": frozenset({P + "view_accessaccount"}),
    "access_account.add": frozenset({P + "add_accessaccount"}),
    "access_account.change": frozenset({P + "change_accessaccount"}),
    "access_key.view": frozenset({P + "view_accesskey"}),
    "access_key.issue": frozenset({P + "issue_accesskey"}),
    "access_key.revoke": frozenset({P + "revoke_accesskey"}),
    # A rotation issues a new pair and revokes the old one: it needs both.
    "access_key.rotate": frozenset({P + "issue_accesskey", P + "revoke_accesskey"}),
    "signing_key.view": frozenset({P + "view_signingkey"}),
    "signing_key.rotate": frozenset({P + "rotate_signingkey"}),
    "signing_key.retire": frozenset({P + "retire_signingkey"}),
    "audit.view": frozenset({"console.view_auditevent"}),
    # Refused requests hold facts only, never a secret: every role may read them.
    "refusal.view": frozenset({"console.view_refusal"}),
    "session.view": frozenset({P + "view_loginsession"}),
    # Ending a session revokes the tokens issued in it.
    "session.end": frozenset({P + "view_loginsession", P + "revoke_tokens"}),
    # A registration token lets its holder add applications: issuing one is adding them.
    "registration_token.view": frozenset({P + "view_initialaccesstoken"}),
    "registration_token.issue": frozenset({P + "add_initialaccesstoken", P + "add_application"}),
    "registration_token.revoke": frozenset({P + "revoke_initialaccesstoken"}),
}


def is_console_user(user):
    """An active staff user: the only accounts the console serves at all."""
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


def allowed(user, action):
    """May ``user`` do ``action``? An unknown action is refused: a new action needs a rule here."""
    needed = ACTIONS.get(action)
    if needed is None or not is_console_user(user):
        return False
    return user.has_perms(needed)


def require(request, action):
    """For the admin's own views: 403 unless the signed-in user may do ``action``."""
    if not allowed(request.user, action):
        raise PermissionDenied


# -- the shipped roles --------------------------------------------------------------------

IDENTITY_ADMINISTRATOR = "Identity administrator"
APPLICATION_MANAGER = "Application manager"
AUDITOR = "Auditor"

# The apps whose every permission the identity administrator holds. Not ``auth``: changing
# users and groups would let a role grant itself superuser, so that stays with superusers.
ADMINISTERED_APPS = ("oidc_provider", "oauth2_provider", "console")

# Models the auditor may read. Every page and API response for these shows no secret:
# client secrets and SKs are stored as digests and never listed, private keys are never
# loaded, DOT's token and code admins show masked values only.
AUDITED_MODELS = {
    "oidc_provider": ("application", "grantpolicy", "accessaccount", "accesskey", "signingkey", "consent", "loginsession",
                      "initialaccesstoken"),
    "oauth2_provider": ("accesstoken", "refreshtoken", "idtoken", "grant"),
    "console": ("auditevent", "refusal"),
}

APPLICATION_MANAGER_PERMISSIONS = (
    P + "view_application", P + "add_application", P + "change_application", P + "delete_application",
    P + "regenerate_secret", P + "revoke_tokens",
    # Reads the policy (which grants a type may hold) without changing it.
    P + "view_grantpolicy",
    P + "view_accessaccount", P + "add_accessaccount", P + "change_accessaccount",
    P + "view_accesskey", P + "issue_accesskey", P + "revoke_accesskey",
    P + "view_consent", P + "view_loginsession",
    P + "view_initialaccesstoken", P + "add_initialaccesstoken", P + "revoke_initialaccesstoken",
    DOT + "view_accesstoken", DOT + "view_refreshtoken",
    # Why its applications' requests are refused, and the fix.
    "console.view_refusal",
)


def role_permissions(Permission):
    """{role name: queryset of its permissions}, with ``Permission`` the (historical) model."""
    administrator = Permission.objects.filter(content_type__app_label__in=ADMINISTERED_APPS)
    manager = Q(pk__in=[])
    for name in APPLICATION_MANAGER_PERMISSIONS:
        app_label, codename = name.split(".")
        manager |= Q(content_type__app_label=app_label, codename=codename)
    auditor = Q(pk__in=[])
    for app_label, models in AUDITED_MODELS.items():
        auditor |= Q(content_type__app_label=app_label, codename__in=[f"view_{m}" for m in models])
    manager, auditor = Permission.objects.filter(manager), Permission.objects.filter(auditor)
    return {IDENTITY_ADMINISTRATOR: administrator, APPLICATION_MANAGER: manager, AUDITOR: auditor}


def sync_roles(apps=None, using="default"):
    """Create the three roles, or reset their permissions to the shipped ones; idempotent.

    ``apps`` is a migration's app registry (or None for the live one). Permissions are
    created first: on a fresh database they only appear after migrate otherwise.
    """
    registry = apps or global_apps
    for app_config in registry.get_app_configs():
        if app_config.label in ADMINISTERED_APPS:
            _create_permissions(app_config, using, registry)
    Group = registry.get_model("auth", "Group")
    Permission = registry.get_model("auth", "Permission")
    result = {}
    for name, permissions in role_permissions(Permission).items():
        group, _created = Group.objects.using(using).get_or_create(name=name)
        group.permissions.set(list(permissions.using(using)))
        result[name] = sorted(
            f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")
        )
    return result


def add_to_roles(apps, using, app_label, added):
    """Give the shipped roles new permissions ({role name: codenames}), keeping whatever a
    site changed in them: for migrations that ship a new model."""
    _create_permissions(apps.get_app_config(app_label), using, apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in added.items():
        group = Group.objects.using(using).filter(name=role).first()
        if group is not None:
            group.permissions.add(*Permission.objects.using(using).filter(
                content_type__app_label=app_label, codename__in=codenames))


def _create_permissions(app_config, using, registry):
    # A migration's app configs have no models module; create_permissions skips those.
    had_module = getattr(app_config, "models_module", None)
    app_config.models_module = had_module or True
    try:
        create_permissions(app_config, verbosity=0, using=using, apps=registry)
    finally:
        app_config.models_module = had_module
