"""System checks of the console's settings, reported by `manage.py check`."""

from django.conf import settings
from django.core.checks import Error, register

from .token_counts import DEFAULT_INTERVAL


@register()
def check_token_count_interval(app_configs, **kwargs):
    value = getattr(settings, "CONSOLE_TOKEN_COUNT_INTERVAL", DEFAULT_INTERVAL)
    try:
        valid = float(value) >= 0
    except (TypeError, ValueError):
        valid = False
    if not valid:
        return [Error(
            f"CONSOLE_TOKEN_COUNT_INTERVAL is {value!r}; it must be a number of seconds, 0 or more.",
            hint="Set it to 1 (the default: dashboard counts written at most once a second) or 0 (every token at once).",
            id="console.E001",
        )]
    return []


@register()
def check_refusal_limits(app_configs, **kwargs):
    from .refusals import LIMITS

    errors = []
    for name, (default, minimum, meaning) in LIMITS.items():
        value = getattr(settings, name, default)
        try:
            valid = not isinstance(value, bool) and int(value) == value and value >= minimum
        except (TypeError, ValueError):
            valid = False
        if not valid:
            errors.append(Error(
                f"{name} is {value!r}; it must be a whole number, {minimum} or more ({meaning}).",
                hint=f"Set it to {default}, the default, or leave it out.",
                id="console.E002",
            ))
    return errors
