"""Every route of the API in one table, with what GET /openapi.json says of it (api.spec).

api.openapi adds what it derives from the code: the bearer key and its 401 (api.auth), 503
while a dependency is down on routes that need one, path parameters and their 404, the JSON
body's 400/413/415 and 422, and idempotency's header and replies.
"""
from __future__ import annotations

from api import batches, deliveries, docs, generate_audio, health, jobs, media, metrics, schemas, speech, ui, voices
from api.idempotency import idempotent
from api.spec import (
    AUDIO_TYPES, Reply, Route, accepted, audio_download, download, fails, links_to, ok, wav_download,
)

JOB_LINKS = links_to(
    "job_id", "$response.body#/id",
    jobs.get_job, jobs.cancel_job, jobs.get_audio, jobs.get_audio_url, jobs.get_manifest, deliveries.job_deliveries,
) + links_to("job_id", "$response.body#/id", jobs.get_line_audio, jobs.get_line_audio_url, index="0")
BATCH_LINKS = links_to(
    "batch_id", "$response.body#/id",
    batches.get_batch, batches.get_batch_manifest, batches.get_batch_archive, deliveries.batch_deliveries,
)
VOICE_LINKS = links_to("name", "$response.body#/name", voices.get_voice, voices.delete_voice)
FIRST_EVENT = "$response.body#/deliveries/0/id"
JOB_EVENT_LINKS = links_to("event_id", FIRST_EVENT, deliveries.redeliver_job_event, job_id="$request.path.job_id")
BATCH_EVENT_LINKS = links_to(
    "event_id", FIRST_EVENT, deliveries.redeliver_batch_event, batch_id="$request.path.batch_id"
)

NOT_READY = "The job (or line) has not succeeded: outputs exist once it has."
EXPIRED = fails(410, "The outputs expired: they are kept RESULT_TTL_HOURS after the job or batch finished.")
RUNNING = "A job is running: cancel it (scripts stop between lines) or wait until it finishes."
BUSY = "SYNC_MAX_WAITING requests already wait: nothing was stored; retry after Retry-After."
TIMEOUT = "Not finished within SYNC_WAIT_S: the job keeps running; poll Location."
CANCELED = "The job was canceled while the request waited."
JOB_FAILED = "The job failed (its error is in the message); a retry would render it again."
SYNC_HEADERS = ("Location", "x-should-retry")
SYNC_FAILURES = (
    fails(409, CANCELED, *SYNC_HEADERS), fails(500, JOB_FAILED, *SYNC_HEADERS), fails(503, BUSY, "Retry-After"),
    fails(504, TIMEOUT, *SYNC_HEADERS),
)
GENERATE_AUDIO_REPLIES = (
    ok(schemas.GeneratedAudio), fails(422, "A bad field, or the model refused the text."), *SYNC_FAILURES,
)
GENERATE_AUDIO_EXAMPLES = {"application/json": {"text": "Hello.", "max_audio_length_ms": 1000}}

ROUTES = [
    Route("GET", "/healthz", health.healthz, "Liveness: the process answers", "service", (ok(schemas.Health),)),
    Route("GET", "/readyz", health.readyz, "Readiness: database, broker and object store answer", "service", (
        ok(schemas.Readiness, "Every dependency answered."),
        ok(schemas.Readiness, "Names the dependencies that failed or did not answer in time.", status=503),
    )),
    Route("GET", "/metrics", metrics.scrape, "Queue metrics (Prometheus text format)", "service", (
        Reply(200, "Prometheus text format.", media_types=("text/plain",)),
        fails(503, "The database is unavailable.", "Retry-After"),
    )),
    Route("GET", "/openapi.json", docs.openapi_document, "This document (OpenAPI 3.1)", "service", (
        Reply(200, "The OpenAPI document.", media_types=("application/json",)),
    )),
    Route("GET", "/docs", docs.docs_page, "This document, rendered (Swagger UI)", "service", (
        Reply(200, "An HTML page.", media_types=("text/html",)),
    )),
    Route("GET", "/ui", ui.page, "The web page", "service", (Reply(200, "An HTML page.", media_types=("text/html",)),)),
    Route("GET", "/files/<path:key>", media.serve_file, "A stored file, by a URL this API signed", "service", (
        Reply(200, "The file.", media_types=("*/*",)),
        Reply(206, "The range asked for (media elements seek with Range).", media_types=("*/*",)),
        Reply(304, "Not modified since If-None-Match or If-Modified-Since."),
        fails(403, "The signature is invalid or has expired."),
        fails(404, "No such file."),
        fails(416, "The Range is outside the file."),
    )),
    Route("POST", "/v1/jobs", idempotent(jobs.submit_job), "Submit a job (a text or a script)", "jobs", (
        accepted(schemas.Job, "The job, queued; Location is its URL.", *JOB_LINKS),
    ), examples={"application/json": {"text": "Hello there.", "max_audio_length_ms": 2000, "metadata": {"order": 42}}}),
    Route("GET", "/v1/jobs", jobs.list_jobs, "The key's jobs, newest first", "jobs", (ok(schemas.JobPage),)),
    Route("GET", "/v1/jobs/<uuid:job_id>", jobs.get_job, "A job", "jobs", (ok(schemas.Job),)),
    Route("GET", "/v1/jobs/<uuid:job_id>/audio", jobs.get_audio, "A job's audio, in its format", "jobs", (
        *audio_download("The audio"), fails(409, NOT_READY), EXPIRED,
    )),
    Route("GET", "/v1/jobs/<uuid:job_id>/audio-url", jobs.get_audio_url, "A URL of a job's audio that needs no key",
          "jobs", (ok(schemas.PlayableUrl), fails(409, NOT_READY), EXPIRED)),
    Route("GET", "/v1/jobs/<uuid:job_id>/manifest", jobs.get_manifest, "A script job's manifest", "jobs", (
        *download((), "The manifest", schemas.ScriptManifest),
        fails(404, "No such job, or the job is not a script."), fails(409, NOT_READY), EXPIRED,
    )),
    Route("GET", "/v1/jobs/<uuid:job_id>/lines/<int:index>/audio", jobs.get_line_audio,
          "A script line's audio (WAV), as soon as the line finished", "jobs", (
              *wav_download("The line's audio"), fails(409, NOT_READY), EXPIRED,
          )),
    Route("GET", "/v1/jobs/<uuid:job_id>/lines/<int:index>/audio-url", jobs.get_line_audio_url,
          "A URL of a script line's audio that needs no key", "jobs", (
              ok(schemas.PlayableUrl), fails(409, NOT_READY), EXPIRED,
          )),
    Route("POST", "/v1/jobs/<uuid:job_id>/cancel", jobs.cancel_job, "Cancel a job", "jobs", (
        ok(schemas.Job, "Canceled (it was queued)."),
        ok(schemas.Job, "A running script stops after its current line.", status=202),
        fails(409, "The job cannot be canceled (only queued jobs and running scripts can)."),
    )),
    Route("DELETE", "/v1/jobs/<uuid:job_id>", jobs.delete_job, "Delete a job and its outputs", "jobs", (
        Reply(204, "Deleted."), fails(409, f"{RUNNING} Or: the job is a batch's (delete the batch)."),
    )),
    Route("POST", "/v1/batches", idempotent(batches.create_batch),
          "Upload a CSV of texts and scripts", "batches", (
              accepted(schemas.Batch, "The batch and its jobs, queued; Location is its URL.", *BATCH_LINKS),
              ok(schemas.BatchCheck, "validate_only: the file is valid; nothing was stored."),
              fails(413, "The upload is over 10 MiB."),
              fails(422, "Every problem of the file (`problems`, by line and field), or a bad parameter."),
          ), examples={"text/csv": "text,speaker,max_audio_length_ms\nHello there.,0,640\nAnd again.,1,640\n"}),
    Route("GET", "/v1/batches", batches.list_batches, "The key's batches, newest first", "batches", (ok(schemas.BatchPage),)),
    Route("GET", "/v1/batches/<uuid:batch_id>", batches.get_batch, "A batch and its progress", "batches", (
        ok(schemas.Batch),
    )),
    Route("GET", "/v1/batches/<uuid:batch_id>/manifest", batches.get_batch_manifest,
          "Per CSV line: job, status, audio URL, duration, error", "batches", (
              Reply(200, "As JSON (schema BatchManifest), or as CSV with format=csv.", schemas.BatchManifest,
                    media_types=("text/csv",)),
              EXPIRED,
          )),
    Route("GET", "/v1/batches/<uuid:batch_id>/archive", batches.get_batch_archive,
          "Every rendered file and manifest.csv, as a zip streamed from storage", "batches", (
              Reply(200, "A zip archive.", media_types=("application/zip",), headers=("Content-Disposition",)),
              EXPIRED,
          )),
    Route("GET", "/v1/jobs/<uuid:job_id>/deliveries", deliveries.job_deliveries,
          "A job's webhook events and every attempt", "webhooks", (ok(schemas.DeliveryList, links=JOB_EVENT_LINKS),)),
    Route("POST", "/v1/jobs/<uuid:job_id>/deliveries/<event_id>/redeliver", deliveries.redeliver_job_event,
          "Send a job's webhook event again", "webhooks", (
              ok(schemas.Delivery, "Due now.", status=202),
              fails(429, "Redelivered less than a minute ago.", "Retry-After"),
          )),
    Route("DELETE", "/v1/batches/<uuid:batch_id>", batches.delete_batch, "Delete a batch, its jobs and outputs",
          "batches", (Reply(204, "Deleted."), fails(409, RUNNING))),
    Route("GET", "/v1/batches/<uuid:batch_id>/deliveries", deliveries.batch_deliveries,
          "A batch's webhook events and every attempt", "webhooks", (
              ok(schemas.DeliveryList, links=BATCH_EVENT_LINKS),
          )),
    Route("POST", "/v1/batches/<uuid:batch_id>/deliveries/<event_id>/redeliver", deliveries.redeliver_batch_event,
          "Send a batch's webhook event again", "webhooks", (
              ok(schemas.Delivery, "Due now.", status=202),
              fails(429, "Redelivered less than a minute ago.", "Retry-After"),
          )),
    Route("GET", "/v1/webhook-secret", deliveries.get_webhook_secret, "The key's webhook signing secret", "webhooks", (
        ok(schemas.WebhookSecret),
    )),
    Route("POST", "/v1/webhook-secret/rotate", deliveries.rotate_webhook_secret,
          "A new signing secret; the previous one signs too for 24 h", "webhooks", (ok(schemas.WebhookSecret),)),
    Route("POST", "/v1/voices", voices.create_voice, "Upload a voice prompt", "voices", (
        ok(schemas.Voice, "Stored.", status=201, links=VOICE_LINKS),
        fails(409, "The key has a voice of that name."),
        fails(413, "The upload is over 10 MiB."),
        fails(422, "A bad field; `audio` when the recording does not decode to the end."),
    )),
    Route("GET", "/v1/voices", voices.list_voices, "The key's voices", "voices", (ok(schemas.VoiceList),)),
    Route("GET", "/v1/voices/<name>", voices.get_voice, "A voice", "voices", (ok(schemas.Voice),)),
    Route("DELETE", "/v1/voices/<name>", voices.delete_voice, "Delete a voice and its recording", "voices", (
        Reply(204, "Deleted."),
    )),
    # Synchronous synthesis: the original deployment's contract, and OpenAI's.
    Route("POST", "/generate_audio", generate_audio.generate_audio, "Render and answer base64 audio (synchronous)",
          "synchronous", GENERATE_AUDIO_REPLIES, examples=GENERATE_AUDIO_EXAMPLES, operation_id="generate_audio_legacy"),
    Route("POST", "/v1/generate_audio", generate_audio.generate_audio,
          "Render and answer base64 audio (synchronous)", "synchronous", GENERATE_AUDIO_REPLIES, examples=GENERATE_AUDIO_EXAMPLES),
    Route("POST", "/v1/audio/speech", speech.create_speech, "Text to speech, OpenAI-compatible (synchronous)",
          "openai", (
              Reply(200, "The audio, in response_format.", media_types=AUDIO_TYPES, headers=("X-Job-Id",)),
              fails(400, "A bad or unsupported field, or the model refused the text."), *SYNC_FAILURES,
          ), examples={"application/json": {
              "model": "tts-1", "input": "Hello.", "voice": "alloy", "response_format": "wav", "max_audio_length_ms": 1000,
          }}),
    Route("GET", "/v1/audio/voices", speech.list_audio_voices, "Voices: the key's, then OpenAI's names", "openai", (
        ok(schemas.AudioVoiceList),
    )),
    Route("GET", "/v1/models", speech.list_models, "The model and its OpenAI aliases", "openai", (ok(schemas.ModelList),)),
    Route("GET", "/v1/models/<model>", speech.get_model, "A model", "openai", (ok(schemas.Model),)),
]
