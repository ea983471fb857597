"""WSGI entry point: `gunicorn api.wsgi:app`."""
import logging

from api import create_app
from config import Settings

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
app = create_app(Settings.from_env())
