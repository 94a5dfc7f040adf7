import factory
from django.contrib.auth import get_user_model

from oidc_provider import policy
from oidc_provider.models import Application

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    first_name = "Ada"
    last_name = "Lovelace"
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class ApplicationFactory(factory.django.DjangoModelFactory):
    """An application of the given type with its type's recommended grants.

    After creation, ``app.plaintext_secret`` holds the client secret (confidential types).
    """

    class Meta:
        model = Application

    name = factory.Sequence(lambda n: f"App {n}")
    application_type = policy.WEB
    redirect_uris = "https://rp.example.com/callback"
    post_logout_redirect_uris = "https://rp.example.com/logged-out"
    grant_types = factory.LazyAttribute(lambda a: policy.recommended_grants(a.application_type))
    skip_authorization = False
