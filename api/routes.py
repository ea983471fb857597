"""Every route of the API in one table."""
from __future__ import annotations

from api import batches, deliveries, generate_audio, health, jobs, media, metrics, speech, ui, voices
from api.idempotency import idempotent

ROUTES = [
    # (method, rule, view)
    ("GET", "/healthz", health.healthz),
    ("GET", "/readyz", health.readyz),
    ("GET", "/metrics", metrics.scrape),
    ("GET", "/ui", ui.page),
    ("GET", "/files/<path:key>", media.serve_file),
    ("POST", "/v1/jobs", idempotent(jobs.submit_job)),
    ("GET", "/v1/jobs", jobs.list_jobs),
    ("GET", "/v1/jobs/<uuid:job_id>", jobs.get_job),
    ("GET", "/v1/jobs/<uuid:job_id>/audio", jobs.get_audio),
    ("GET", "/v1/jobs/<uuid:job_id>/audio-url", jobs.get_audio_url),
    ("GET", "/v1/jobs/<uuid:job_id>/manifest", jobs.get_manifest),
    ("GET", "/v1/jobs/<uuid:job_id>/lines/<int:index>/audio", jobs.get_line_audio),
    ("GET", "/v1/jobs/<uuid:job_id>/lines/<int:index>/audio-url", jobs.get_line_audio_url),
    ("POST", "/v1/jobs/<uuid:job_id>/cancel", jobs.cancel_job),
    ("DELETE", "/v1/jobs/<uuid:job_id>", jobs.delete_job),
    ("POST", "/v1/batches", idempotent(batches.create_batch)),
    ("GET", "/v1/batches", batches.list_batches),
    ("GET", "/v1/batches/<uuid:batch_id>", batches.get_batch),
    ("GET", "/v1/batches/<uuid:batch_id>/manifest", batches.get_batch_manifest),
    ("GET", "/v1/batches/<uuid:batch_id>/archive", batches.get_batch_archive),
    ("DELETE", "/v1/batches/<uuid:batch_id>", batches.delete_batch),
    ("GET", "/v1/jobs/<uuid:job_id>/deliveries", deliveries.job_deliveries),
    ("POST", "/v1/jobs/<uuid:job_id>/deliveries/<event_id>/redeliver", deliveries.redeliver_job_event),
    ("GET", "/v1/batches/<uuid:batch_id>/deliveries", deliveries.batch_deliveries),
    ("POST", "/v1/batches/<uuid:batch_id>/deliveries/<event_id>/redeliver", deliveries.redeliver_batch_event),
    ("GET", "/v1/webhook-secret", deliveries.get_webhook_secret),
    ("POST", "/v1/webhook-secret/rotate", deliveries.rotate_webhook_secret),
    ("POST", "/v1/voices", voices.create_voice),
    ("GET", "/v1/voices", voices.list_voices),
    ("GET", "/v1/voices/<name>", voices.get_voice),
    ("DELETE", "/v1/voices/<name>", voices.delete_voice),
    # Synchronous synthesis: the original deployment's contract, and OpenAI's.
    ("POST", "/generate_audio", generate_audio.generate_audio),
    ("POST", "/v1/generate_audio", generate_audio.generate_audio),
    ("POST", "/v1/audio/speech", speech.create_speech),
    ("GET", "/v1/audio/voices", speech.list_audio_voices),
    ("GET", "/v1/models", speech.list_models),
    ("GET", "/v1/models/<model>", speech.get_model),
]
