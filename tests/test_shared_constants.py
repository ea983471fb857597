"""The job domain cannot import the engine (the API never loads torch), so the values both must agree on
are written twice; this test keeps the copies equal."""

import csm.config
import csm.generator
from jobs import validation


def test_the_job_domain_and_the_engine_agree_on_frames_lengths_and_sampling_defaults():
    assert validation.FRAME_MS == csm.config.FRAME_MS
    assert validation.MAX_AUDIO_LENGTH_MS == csm.generator.MAX_AUDIO_LENGTH_MS
    assert validation.DEFAULT_TEMPERATURE == csm.generator.DEFAULT_TEMPERATURE
    assert validation.DEFAULT_TOPK == csm.generator.DEFAULT_TOPK
