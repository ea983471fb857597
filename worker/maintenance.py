"""Celery entry point of maintenance workers, which need no GPU and never load the model: the
sweeper (`celery -A worker.maintenance:app worker -Q maintenance`) and the webhook dispatcher
(`... -Q webhooks`), each its own worker so that slow webhook receivers cannot delay the sweep."""
from config import Settings
from worker.app import create_worker_app

app = create_worker_app(Settings.from_env(), load_model=False)
