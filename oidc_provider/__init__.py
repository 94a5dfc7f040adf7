"""An OpenID Connect provider on top of django-oauth-toolkit."""
