"""Template tags of the admin console: the dashboard's data, for the admin index."""

from django import template

from console.views.dashboard import dashboard

register = template.Library()


@register.simple_tag(takes_context=True)
def console_dashboard(context):
    """Counts, charts (SVG built and escaped in console.charts) and links for the first page."""
    request = context.get("request")
    if request is None or not getattr(request.user, "is_staff", False):
        return {}
    return dashboard(request)
