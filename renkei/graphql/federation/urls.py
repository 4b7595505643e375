"""URLs of the prefecture federation subgraph (public host).

``federation/graphql`` is the subgraph a router or gateway composes; ``federation/tenant``
is what another deployment's fan-out calls for a municipality held here (see views.py)."""

from django.urls import path

from renkei.graphql.federation import views

urlpatterns: list = [
    path("federation/graphql", views.graphql_view, name="federation-graphql"),
    path("federation/tenant", views.tenant_metric, name="federation-tenant"),
]
