import os

from django.core.asgi import get_asgi_application

from renkei.platform import deploy_secrets

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "renkei.site.settings")
deploy_secrets.refuse_to_start()  # any ASGI server: no start with a forgeable secret
application = get_asgi_application()
