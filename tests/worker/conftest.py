"""The render pipeline in process: the real tiny model, a real database (SQLite and
PostgreSQL) and a real S3 server."""
import pytest
import torch

from support import make_settings, s3_environment
from worker.runtime import Runtime
from worker.voices import VoiceLibrary


class SpyGenerator:
    """The real generator, recording each batch it renders; `silence(request)` makes chosen
    requests come back empty, as when the model emits its end frame at once."""

    def __init__(self, generator, silence=lambda request: False):
        self.generator = generator
        self.silence = silence
        self.sample_rate = generator.sample_rate
        self.max_batch_size = generator.max_batch_size
        self.batches: list[list] = []

    def __getattr__(self, name):
        return getattr(self.generator, name)

    def generate_batch(self, requests):
        self.batches.append(list(requests))
        outputs = self.generator.generate_batch(requests)
        return [torch.zeros(0) if self.silence(r) else out for r, out in zip(requests, outputs)]


@pytest.fixture
def make_runtime(database_url, sessions, s3_endpoint, s3_bucket, tiny_generator, tmp_path):
    from storage import make_store

    def make(silence=lambda request: False, **environ) -> Runtime:
        settings = make_settings(
            CSM_DATA_DIR=str(tmp_path), DATABASE_URL=database_url, **(s3_environment(s3_endpoint, s3_bucket) | environ)
        )
        store = make_store(settings)
        generator = SpyGenerator(tiny_generator, silence)
        return Runtime(settings, sessions, store, generator, VoiceLibrary(sessions, store, generator.sample_rate))

    return make


@pytest.fixture
def runtime(make_runtime) -> Runtime:
    return make_runtime()
