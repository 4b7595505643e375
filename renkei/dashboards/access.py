"""What every page starts with: who is asking, and may they be here at all. The finer
questions (this pupil, this school) go to ``renkei.accounts.policy`` in the views."""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login

from renkei.accounts import policy


def tenant_principal(request) -> policy.Principal:
    """The principal of a signed-in user with a role in this municipality; 403 otherwise
    (prefecture analysts never enter a municipality)."""
    principal = policy.principal_for(request)
    policy.require(policy.may_enter_tenant(principal, request.tenant), policy.FORBIDDEN_TENANT)
    return principal


def login_redirect(request):
    return redirect_to_login(request.get_full_path())
