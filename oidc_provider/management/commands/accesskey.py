"""``manage.py accesskey``: AK/SK pairs of programmatic access accounts."""

from django.core.management.base import CommandError
from django.db import transaction

from oidc_provider import access_keys
from oidc_provider.management import ProviderCommand
from oidc_provider.models import AccessAccount, AccessKey


class Command(ProviderCommand):
    help = "Issue, rotate and revoke AK/SK pairs for machine access (client credentials)."
    subcommands = {
        "create": "Issue a new AK/SK pair for an account (made with the given scopes if it does not exist).",
        "revoke": "Revoke one pair; the account's other pairs keep working.",
        "rotate": "Issue a new pair on the same account and revoke the given one.",
        "list": "List the pairs of every account (never their secrets).",
    }

    def add_create_arguments(self, parser):
        parser.add_argument("--account", required=True, help="The account's name.")
        parser.add_argument("--scope", action="append", default=[], dest="scopes",
                            help="A resource permission (repeatable), used when the account is created.")

    def add_revoke_arguments(self, parser):
        parser.add_argument("access_key", help="The AK to revoke.")

    add_rotate_arguments = add_revoke_arguments

    def handle_create(self, *, account, scopes, **options):
        errors = access_keys.validate_scopes(scopes)
        if errors:
            raise CommandError("\n".join(errors))
        with transaction.atomic():
            existing = AccessAccount.objects.filter(name=account).first()
            acct = existing or access_keys.get_or_create_account(account, scopes)
            if existing and scopes and set(scopes) != set(existing.scopes):
                self.warn(f"account '{account}' exists with scopes {existing.scopes}; --scope only applies when it is created.")
            key, sk = access_keys.issue(acct)
        data = {"account": acct.name, "access_key": key.access_key, "secret_key": sk, "scopes": acct.scopes}
        self.emit(data, "\n".join([
            f"Account:    {acct.name}",
            f"Scopes:     {' '.join(acct.scopes) or '(none)'}",
            f"Access key: {key.access_key}",
            f"Secret key: {sk}",
            "The secret key is shown only this once; store it now.",
        ]))

    def _key(self, access_key):
        key = AccessKey.objects.select_related("account").filter(access_key=access_key).first()
        if key is None:
            raise CommandError(f"No access key '{access_key}'. List them with: manage.py accesskey list")
        return key

    def handle_revoke(self, *, access_key, **options):
        key = access_keys.revoke(self._key(access_key))
        self.emit({"access_key": key.access_key, "account": key.account.name, "revoked_at": key.revoked_at},
                  f"Revoked {key.access_key} of account {key.account.name}.")

    def handle_rotate(self, *, access_key, **options):
        old = self._key(access_key)
        if old.revoked_at is not None:
            raise CommandError(f"{access_key} is already revoked; issue a new pair with: manage.py accesskey create --account {old.account.name}")
        key, sk = access_keys.rotate(old)
        data = {"account": key.account.name, "access_key": key.access_key, "secret_key": sk, "revoked": old.access_key, "scopes": key.account.scopes}
        self.emit(data, f"New access key: {key.access_key}\nSecret key: {sk}\nRevoked: {old.access_key}\nThe secret key is shown only this once.")

    def handle_list(self, **options):
        keys = AccessKey.objects.select_related("account").order_by("account__name", "-created_at")
        rows = [
            {"account": k.account.name, "access_key": k.access_key, "active": k.is_active,
             "created_at": k.created_at, "last_used_at": k.last_used_at, "revoked_at": k.revoked_at}
            for k in keys
        ]
        text = "\n".join(f"{r['account']:<24} {r['access_key']:<28} {'active' if r['active'] else 'revoked'}" for r in rows)
        self.emit({"access_keys": rows}, text or "No access keys.")
