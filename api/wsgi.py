"""WSGI entry point: `gunicorn api.wsgi:app`."""
import logs
from api import create_app
from config import Settings

settings = Settings.from_env()
logs.configure(settings.log_format)
app = create_app(settings)
