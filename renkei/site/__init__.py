"""The composition root: settings, URLconfs, the command line, the Celery app and the WSGI/ASGI
entry points. The only package that imports every area (docs/architecture.md); no area
imports it.

The Celery app is created with the package, so that the areas' ``shared_task``s bind to it
(eager in-process without a broker) in every process that loads the settings.
"""

from renkei.site.celery import app as celery_app

__all__ = ["celery_app"]
