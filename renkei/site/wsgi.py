import os

from django.core.wsgi import get_wsgi_application

from renkei.platform import deploy_secrets

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "renkei.site.settings")
deploy_secrets.refuse_to_start()  # any WSGI server: no start with a forgeable secret
application = get_wsgi_application()
