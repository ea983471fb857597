"""The webhook outbox: a due event goes to one dispatcher only, on every database."""
import pytest
from sqlalchemy import event
from support import emit_webhook_events

from jobs import outbox
from jobs.db import make_engine, make_session_factory

HOLD_S = 60


@pytest.fixture
def dispatchers(database_url):
    """Two dispatchers' session factories, each on its own engine, as in two processes."""
    engines = [make_engine(database_url) for _ in range(2)]
    yield [make_session_factory(engine) for engine in engines]
    for engine in engines:
        engine.dispose()


def test_of_two_dispatchers_that_read_the_same_due_event_only_one_takes_it(dispatchers):
    first, second = dispatchers
    (event_id,) = emit_webhook_events(first, "https://hooks.example.com/a", 1)
    taken_by_second = []
    with first.begin() as session:

        @event.listens_for(session, "do_orm_execute", once=True)
        def second_takes_it_meanwhile(state):
            due = state.invoke_statement()  # the first dispatcher's read of the due events
            with second.begin() as other:
                taken_by_second.extend(e.id for e in outbox.take_due(other, limit=10, hold_s=HOLD_S))
            return due

        taken_by_first = [e.id for e in outbox.take_due(session, limit=10, hold_s=HOLD_S)]
    assert taken_by_first + taken_by_second == [event_id]
