"""The context of one GraphQL request: who asks (a policy principal), in which municipality,
by which means (session or token), and the request's DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.http import HttpRequest

from renkei.accounts import policy
from renkei.accounts.models import ApiToken
from renkei.graphql.tenant.dataloaders import Loaders


@dataclass
class RequestContext:
    request: HttpRequest
    municipality: object  # renkei.tenants.models.Municipality (no upward import needed)
    principal: policy.Principal
    token: ApiToken | None = None
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self)

    @property
    def via(self) -> str:
        """What the access log records as the channel (at most 40 characters)."""
        return f"graphql-token:{self.token.prefix}" if self.token else "graphql"

    @property
    def is_widget(self) -> bool:
        return self.token is not None and self.token.kind == ApiToken.Kind.WIDGET

    @property
    def token_metrics(self) -> frozenset[str] | None:
        """The metrics a token is limited to, or None when not limited."""
        if self.token is None or not self.token.metrics:
            return None
        return frozenset(self.token.metrics)
