"""The console's own admin pages, served through the admin site (``ModelAdmin.get_urls``).

Each view takes the ``ModelAdmin`` it belongs to, for permissions and the admin's context;
``console.admin`` wraps them with ``admin_site.admin_view`` (staff login, CSRF, no cache).
One module per concern: ``shown_once`` (secrets passed once to the page that shows them),
``applications``, ``tokens``, ``policy_matrix``, ``access_keys``, ``audit_log`` and
``dashboard``; ``common`` holds what they share.
"""
