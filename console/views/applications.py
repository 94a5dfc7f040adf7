"""Application pages: "which flow do I need?", the credentials page, a new client secret."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from oidc_provider import policy
from oidc_provider.conf import oidc_settings

from .. import charts, flows, services
from ..forms import ApplicationForm, FlowCreateForm
from ..permissions import allowed, require
from .common import admin_context, admin_url
from .shown_once import pop_client_secret, shown_once, shown_once_redirect, stash_client_secret


def render_diagrams(application_type, grants):
    """[(diagram, svg markup)] for an application's grants."""
    return [(d, charts.sequence_diagram(d)) for d in flows.diagrams_for(application_type, grants)]


def flow_chooser(request, model_admin):
    """'Which flow do I need?': the docs' questions, one after another, then the answer.

    The questions are a GET form (answers in the query, nothing changes); the last step is a
    POST form (with CSRF) that creates the application from the answer.
    """
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    source = request.POST if request.method == "POST" else request.GET
    answers = flows.clean_answers(source)
    recommendation = flows.recommend(answers)
    create_form = None
    if recommendation is not None:
        if request.method == "POST":
            create_form = FlowCreateForm(request.POST, recommendation=recommendation)
            if create_form.is_valid():
                app_form = ApplicationForm(data=create_form.application_data())
                if app_form.is_valid():
                    app = services.create_application(request.user, app_form.save(commit=False))
                    model_admin.log_addition(request, app, [{"added": {}}])
                    if app.plaintext_secret:
                        stash_client_secret(request, app, app.plaintext_secret)
                    return shown_once_redirect(request, admin_url("oidc_provider_application_credentials", app.pk))
                for field, errors in app_form.errors.items():
                    target = field if field in create_form.fields else None
                    for error in errors:
                        create_form.add_error(target, error)
        else:
            create_form = FlowCreateForm(recommendation=recommendation)
        if request.method == "POST" and not create_form.is_valid():
            status = 400
        else:
            status = 200
    elif request.method == "POST":
        status = 400
    else:
        status = 200

    current = policy.current_policy()
    questions = []
    for question in flows.asked_questions(answers):
        questions.append({"question": question, "answer": answers.get(question.key)})
    context = admin_context(
        request,
        model_admin,
        _("Which flow do I need?"),
        questions=questions,
        answers=answers,
        recommendation=recommendation,
        create_form=create_form,
    )
    if recommendation is not None:
        context.update(
            type_label=dict(policy.APPLICATION_TYPE_CHOICES)[recommendation.application_type],
            grant_rows=[
                {
                    "grant": g,
                    "label": dict(policy.GRANT_CHOICES)[g],
                    "state": current[(recommendation.application_type, g)],
                }
                for g in recommendation.grants
            ],
            forbidden_now=[g for g in recommendation.grants if current[(recommendation.application_type, g)] == policy.FORBIDDEN],
            diagrams=render_diagrams(recommendation.application_type, recommendation.grants),
        )
    return TemplateResponse(request, "console/admin/flow_chooser.html", context, status=status)


def application_credentials(request, model_admin, object_id):
    """What a developer needs to connect the application; its secret only the first time."""
    # The admin's own rows: an access account's application is not one of them.
    app = get_object_or_404(model_admin.get_queryset(request), pk=object_id)
    if not model_admin.has_view_permission(request, app):
        raise PermissionDenied
    secret = pop_client_secret(request, app)
    ep = flows.endpoints(oidc_settings.issuer)
    scope = None
    if app.application_type == policy.SERVICE:
        account = getattr(app, "access_account", None)
        scope = " ".join(account.scopes) if account is not None and account.scopes else "read"
    snippets = flows.snippets(
        issuer=oidc_settings.issuer,
        client_id=app.client_id,
        application_type=app.application_type,
        grants=app.grant_types,
        redirect_uris=app.redirect_uris.split(),
        secret=secret,
        scope=scope,
    )
    context = admin_context(
        request,
        model_admin,
        _("Connect %(name)s") % {"name": app.name or app.client_id},
        original=app,
        application=app,
        secret=secret,
        endpoints=ep,
        snippets=snippets,
        diagrams=render_diagrams(app.application_type, app.grant_types),
        type_label=dict(policy.APPLICATION_TYPE_CHOICES).get(app.application_type, app.application_type),
        can_change=allowed(request.user, "application.regenerate_secret"),
    )
    # The secret is in this page only once: never let a cache keep it (shown_once says no-store).
    return shown_once(request, TemplateResponse(request, "console/admin/application_credentials.html", context))


def regenerate_secret(request, model_admin, object_id):
    """Confirm, then give a confidential application a new secret; the old one stops working."""
    require(request, "application.regenerate_secret")
    # The admin's own rows: an access account's application is not one of them.
    app = get_object_or_404(model_admin.get_queryset(request), pk=object_id)
    if app.is_public:
        messages.info(request, _("%(name)s is a public client: it has no secret (it proves itself with PKCE).") % {"name": app.name})
        return redirect(admin_url("oidc_provider_application_change", app.pk))
    if request.method == "POST":
        secret = services.regenerate_client_secret(request.user, app)
        model_admin.log_change(request, app, [{"changed": {"fields": ["client secret"]}}])
        stash_client_secret(request, app, secret)
        return shown_once_redirect(request, admin_url("oidc_provider_application_credentials", app.pk))
    context = admin_context(
        request,
        model_admin,
        _("Regenerate the client secret of %(name)s?") % {"name": app.name or app.client_id},
        original=app,
        object=app,
        text=_(
            "A new secret is made and shown once, on the next page. The current secret stops working "
            "at once: every service that uses it fails until you give it the new one."
        ),
        button=_("Yes, regenerate the secret"),
        cancel_url=admin_url("oidc_provider_application_change", app.pk),
        danger=True,
    )
    return TemplateResponse(request, "console/admin/confirm.html", context)
