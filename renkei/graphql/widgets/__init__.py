"""Embeddable web components (custom elements) that read the GraphQL APIs.

The JavaScript lives in ``src/`` and is bundled (Chart.js included) into
``static/renkei/widgets.js``, which is committed so that the demo and the tests need only
Python. ``bundle.py`` says whether the committed bundle matches its sources.
"""
