"""The ``fake_graph`` (a local Microsoft Graph) and ``fake_lrs`` (a local learning record
store) fixtures for the connector tests; tests in other directories can ``from
tests.connectors.fake_graph import FakeGraph, fake_graph``."""

from fake_graph import fake_graph
from fake_lrs import fake_lrs

__all__ = ["fake_graph", "fake_lrs"]
