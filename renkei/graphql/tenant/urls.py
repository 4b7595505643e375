"""URLs of the municipality GraphQL API (inside a tenant)."""

urlpatterns: list = []
