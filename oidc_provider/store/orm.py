"""The store on the ORM: portable to every database Django supports.

Single use rests on a conditional write whose row count decides: the DELETE of a code's
Grant, the UPDATE that revokes a live refresh token. The database runs those one at a time
per row (a row lock, or SQLite's write lock), so of two concurrent requests exactly one
changes the row; the loser's write finds it gone and the transaction writes nothing else.
Deciding by the write itself, rather than by a locking read before it, also spares SQLite's
deferred transactions a read lock that two writers would both hold and neither could upgrade.
"""

from django.db import router, transaction
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)

from .. import config_cache
from ..models import ConfigVersion, RedeemedCode, SessionSignIn
from . import Store


def _atomic():
    return transaction.atomic(using=router.db_for_write(get_access_token_model()))


class OrmStore(Store):
    def save_code(self, grant):
        grant.save()
        return grant

    def read_code(self, digest):
        return get_grant_model().objects.select_related("user__oidc_subject").filter(code=digest).first()

    def redeem_code(self, digest, application, tokens):
        with _atomic():
            if not get_grant_model().objects.filter(code=digest, application=application).delete()[0]:
                return False
            self._save(tokens)
            if tokens.refresh_token is None:
                RedeemedCode.objects.create(code_digest=digest, application=application, access_token_id=tokens.access_token.pk)
        return True

    def revoke_redeemed_code(self, digest, family, application):
        refresh_tokens = get_refresh_token_model().objects
        if refresh_tokens.filter(token_family=family, application=application).exists():
            self.revoke_family(family)
            return True
        spent = RedeemedCode.objects.filter(code_digest=digest, application=application).first()
        if spent is None:
            return False
        get_access_token_model().objects.filter(pk=spent.access_token_id).delete()
        return True

    def issue_access_token(self, tokens):
        config_cache.confirm()  # a request that assumed config_cache's version reads it first
        if tokens.id_token is None:
            tokens.access_token.save()  # one row: its own transaction
            return
        with _atomic():
            self._save(tokens)

    def rotate_refresh_token(self, previous, tokens):
        model = type(previous)
        with _atomic():
            live = model.objects.filter(pk=previous.pk, revoked__isnull=True)
            # DOT's RefreshToken.revoke(): revoked stamped, its access token deleted.
            if not live.update(revoked=timezone.now(), access_token=None):
                return False
            get_access_token_model().objects.filter(pk=previous.access_token_id).delete()
            self._save(tokens)
        return True

    def revoke_family(self, family):
        get_refresh_token_model().revoke_family(family)

    def read_access_token(self, checksum):
        return get_access_token_model().objects.select_related("user__oidc_subject").filter(token_checksum=checksum).first()

    def read_refresh_token(self, checksum):
        model = get_refresh_token_model()
        born = model.objects.filter(token_family=OuterRef("token_family")).order_by("created").values("created")[:1]
        sid = SessionSignIn.objects.filter(token_family=OuterRef("token_family")).values("session__sid")[:1]
        return (
            model.objects.select_related("access_token", "user__oidc_subject")
            .annotate(family_born=Subquery(born), sid=Subquery(sid))
            .filter(token_checksum=checksum)
            .order_by(F("revoked").desc(nulls_first=True))  # the live row first, were a checksum issued twice
            .first()
        )

    def save_id_token(self, id_token):
        id_token.save()
        return id_token

    def read_id_token(self, jti):
        return get_id_token_model().objects.filter(jti=jti).first()

    def read_config_version(self):
        return ConfigVersion.objects.filter(pk=1).values_list("value", flat=True).first()

    @staticmethod
    def _save(tokens):
        # In this order, each foreign key takes the primary key its row has just got.
        for row in (tokens.id_token, tokens.access_token, tokens.refresh_token):
            if row is not None:
                row.save()
