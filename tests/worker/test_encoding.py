"""Output formats: every one decodes back to the rendered samples, mono at 24 kHz, and the
same samples always give the same bytes."""
import io

import numpy as np
import pytest
import soundfile

from jobs.formats import FORMATS, PCM
from worker.encoding import OGG_SERIAL, encode

RATE = 24_000


@pytest.fixture(scope="module")
def speech_like() -> np.ndarray:
    """1.23 s of a gliding tone with noise, peaking past full scale (clipped on encoding)."""
    t = np.arange(int(RATE * 1.23)) / RATE
    rng = np.random.default_rng(0)
    return (1.1 * np.sin(2 * np.pi * (200 + 300 * t) * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.mark.parametrize("name", sorted(set(FORMATS) - {PCM.name}))
def test_each_format_decodes_to_the_same_length_mono_at_24_khz(speech_like, name):
    data = encode(speech_like, RATE, FORMATS[name])
    decoded, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    assert (rate, decoded.ndim, decoded.shape[0]) == (RATE, 1, speech_like.size)
    # Lossy codecs keep the waveform's shape: strongly correlated with the clipped input.
    reference = np.clip(speech_like, -1, 1)
    assert np.corrcoef(decoded, reference)[0, 1] > 0.9


def test_pcm_is_raw_signed_16_bit_little_endian(speech_like):
    data = encode(speech_like, RATE, PCM)
    samples = np.frombuffer(data, dtype="<i2")
    assert samples.size == speech_like.size
    assert samples.max() == 32767  # clipped, not wrapped around
    assert samples[100] == round(float(speech_like[100]) * 32767)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_the_same_samples_give_the_same_bytes(speech_like, name):
    assert encode(speech_like, RATE, FORMATS[name]) == encode(speech_like, RATE, FORMATS[name])


def test_opus_pages_carry_the_fixed_serial_and_valid_checksums(speech_like):
    data = encode(speech_like, RATE, FORMATS["opus"])
    assert data.count(b"OggS") >= 2 and data[14:18] == OGG_SERIAL.to_bytes(4, "little")
    assert soundfile.info(io.BytesIO(data)).format == "OGG"  # libsndfile checks page CRCs
