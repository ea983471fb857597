"""The maintenance workers as deployed (docker-compose.yml): a sweeper worker with beat and two
webhook dispatcher workers, real processes on Redis and PostgreSQL, against a slow real HTTP
receiver. No event goes out twice at the same time, and the sweep keeps its schedule while the
dispatchers are busy."""
import re
import statistics
import time
from contextlib import ExitStack
from datetime import datetime

from support import emit_webhook_events, free_redis_db, make_settings, run_worker
from webhook_receiver import run_receiver

from jobs.db import make_engine, make_session_factory
from jobs.queue import MAINTENANCE_QUEUE, WEBHOOKS_QUEUE

SWEEP_INTERVAL_S = 1.0
_SWEEP_DONE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/[^\]]+\] Task csm_batch\.sweep\[[^\]]+\] succeeded", re.M)


def sweeps(log_text: str) -> list[float]:
    """When each sweep finished, as time.time() values (Celery logs local time)."""
    return [datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp() for stamp in _SWEEP_DONE.findall(log_text)]


def test_busy_dispatchers_never_send_an_event_twice_at_once_nor_delay_the_sweep(tmp_path, postgres_database):
    environ = {
        "CSM_DATA_DIR": str(tmp_path), "DATABASE_URL": postgres_database(), "BROKER_URL": free_redis_db(),
        "WEBHOOK_ALLOW_PRIVATE": "true", "WEBHOOK_TIMEOUT_S": "3", "WEBHOOK_DISPATCH_BUDGET_S": "1",
        "WEBHOOK_DISPATCH_INTERVAL_S": "0.5", "SWEEP_INTERVAL_S": str(SWEEP_INTERVAL_S),
    }
    settings = make_settings(**environ)
    engine = make_engine(settings.database_url)
    maintenance = dict(app="worker.maintenance:app")
    with run_receiver() as receiver, ExitStack() as workers:
        receiver.delay_s = 0.8  # 24 events: 19 s of answers for one dispatcher at a time
        ids = emit_webhook_events(make_session_factory(engine), receiver.url("/slow"), 24)
        for number in (1, 2):
            workers.enter_context(run_worker(
                environ, tmp_path / f"webhooks-{number}.log", "-n", f"webhooks-{number}@%h",
                queues=(WEBHOOKS_QUEUE,), **maintenance,
            ))
        workers.enter_context(run_worker(
            environ, tmp_path / "sweeper.log", "-n", "sweeper@%h", "--beat", queues=(MAINTENANCE_QUEUE,), **maintenance,
        ))
        deadline = time.monotonic() + 120
        while len({r.headers["webhook-id"] for r in receiver.requests if r.answered}) < len(ids):
            assert time.monotonic() < deadline, f"{len(receiver.requests)} of {len(ids)} events sent"
            time.sleep(0.2)
    engine.dispose()

    by_event: dict[str, list] = {}
    for request in receiver.requests:
        by_event.setdefault(request.headers["webhook-id"], []).append((request.started, request.answered))
    for spans in by_event.values():
        spans.sort()
        assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:])), spans
    assert sorted(by_event) == sorted(ids)

    busy_from = min(r.started for r in receiver.requests)
    busy_to = max(r.answered for r in receiver.requests)
    assert busy_to - busy_from > 5  # the dispatchers were busy long enough to tell
    done = [t for t in sweeps((tmp_path / "sweeper.log").read_text()) if busy_from <= t <= busy_to]
    gaps = [b - a for a, b in zip([busy_from, *done], [*done, busy_to])]
    # Sharing a worker with the dispatchers, sweeps waited for whole dispatch runs (3.3 s apart);
    # the median spares the test one stall of a busy machine.
    assert statistics.median(gaps) < 2 * SWEEP_INTERVAL_S, gaps
