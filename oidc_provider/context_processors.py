from .conf import oidc_settings


def branding(request):
    return {
        "brand": {
            "name": oidc_settings.SITE_NAME,
            "logo_url": oidc_settings.LOGO_URL,
            "primary_color": oidc_settings.PRIMARY_COLOR,
        }
    }
