"""The API in process (Flask test client) on the embedded default: SQLite, a filesystem broker
and a local store, all real, in a temporary folder."""
import pytest

from api import create_app
from provision import create_key, init
from support import make_settings


@pytest.fixture
def settings(tmp_path):
    settings = make_settings(CSM_DATA_DIR=str(tmp_path), MAX_TEXT_CHARS="200", MAX_BODY_BYTES="16384")
    init(settings)
    return settings


@pytest.fixture
def app(settings):
    return create_app(settings)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def key(settings):
    return create_key(settings, "alice")
