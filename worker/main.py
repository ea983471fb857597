"""Celery entry point of GPU workers: `celery -A worker.main:app worker -Q sync,render,batch`
(and of the scheduler: `celery -A worker.main:app beat`)."""
from config import Settings
from worker.app import create_worker_app

app = create_worker_app(Settings.from_env(), load_model=True)
