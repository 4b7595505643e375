"""The ``fake_graph`` fixture (a local Microsoft Graph) for the connector tests; tests in other
directories can ``from tests.connectors.fake_graph import FakeGraph, fake_graph``."""

from fake_graph import fake_graph

__all__ = ["fake_graph"]
