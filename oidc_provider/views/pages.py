"""What every hosted page (login, consent, logout, errors) shares."""

from functools import wraps


def hosted_page(view):
    """Hosted pages cannot be framed, and load nothing from elsewhere."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response["X-Frame-Options"] = "DENY"
        response.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; frame-ancestors 'none'; form-action 'self' *",
        )
        return response

    return wrapper
