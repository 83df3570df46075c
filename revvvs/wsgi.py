import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revvvs.settings")
django_application = get_wsgi_application()

# Tracking links (/t/{code}) skip the web app's middleware stack: attribution/edge.py.
from attribution.edge import TrackingEdge  # noqa: E402

application = TrackingEdge(django_application)
