"""Celery entry point: `celery -A worker.main:app worker` (and `beat`)."""
from config import Settings
from worker.app import create_worker_app

app = create_worker_app(Settings.from_env())
