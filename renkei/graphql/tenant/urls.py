"""URLs of the municipality GraphQL API (inside a tenant): POST /graphql."""

from django.urls import path

from renkei.graphql.tenant.views import graphql_view

urlpatterns = [
    path("graphql", graphql_view(), name="tenant-graphql"),
]
