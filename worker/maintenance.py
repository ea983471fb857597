"""Celery entry point of maintenance workers (the sweeper and the webhook dispatcher), which need
no GPU and never load the model: `celery -A worker.maintenance:app worker -Q maintenance`."""
from config import Settings
from worker.app import create_worker_app

app = create_worker_app(Settings.from_env(), load_model=False)
