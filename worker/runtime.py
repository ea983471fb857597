"""What a worker process holds for its whole life: the model, a DB pool and the store.

Loaded once per process before its first task (Celery's worker_process_init), never in
the API and never in a parent that forks.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from config import Settings
from jobs.db import make_session_factory, service_engine
from storage import ObjectStore, make_store
from worker.voices import VoiceLibrary

if TYPE_CHECKING:
    from csm import Generator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    sessions: sessionmaker[Session]
    store: ObjectStore
    generator: "Generator"
    voices: VoiceLibrary


def load_runtime(settings: Settings) -> Runtime:
    from csm import load_generator

    started = time.perf_counter()
    generator = load_generator(
        settings.csm_model,
        device=settings.csm_device,
        cache_dir=settings.model_cache_dir,
        max_batch_size=settings.worker_batch_size,
        compile=settings.csm_compile,
        cuda_graphs=settings.csm_cuda_graphs,
    )
    load_s = time.perf_counter() - started
    warm_up_s = generator.warm_up()
    log.info("event=model_loaded model=%s load_s=%.2f warm_up_s=%.2f compiled=%s compile_s=%.2f graphed=%s "
             "capture_s=%.2f", settings.csm_model, load_s, warm_up_s, generator.compiled, generator.compile_s,
             generator.graphed, generator.capture_s)
    sessions = process_sessions(settings)
    store = make_store(settings)
    return Runtime(
        settings=settings,
        sessions=sessions,
        store=store,
        generator=generator,
        voices=VoiceLibrary(sessions, store, generator.sample_rate),
    )


_current: Runtime | None = None
_sessions: sessionmaker[Session] | None = None


def process_sessions(settings: Settings) -> sessionmaker[Session]:
    """This process's database pool, made after any fork (pools must not cross one)."""
    global _sessions
    if _sessions is None:
        _sessions = make_session_factory(service_engine(settings))
    return _sessions


def init_process(settings: Settings) -> None:
    global _current
    _current = load_runtime(settings)


def current(settings: Settings) -> Runtime:
    """This process's runtime, loaded now if no worker_process_init ran (solo pool)."""
    if _current is None:
        init_process(settings)
    return _current
