"""URLs of the prefecture federation subgraph (public host)."""

urlpatterns: list = []
