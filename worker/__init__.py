"""Celery GPU worker: claims jobs from SQL, renders them with CSM, uploads WAVs."""
