import pytest
import torch

from csm import Segment, load_generator
from csm.config import FRAME_MS, SAMPLES_PER_FRAME
from csm.generator import EOS_CHECK_FRAMES


def test_generate_returns_mono_float32_of_the_length_limit(tiny_generator):
    frames = 5
    audio = tiny_generator.generate("Hi.", 0, max_audio_length_ms=frames * FRAME_MS, seed=0)

    assert audio.dtype == torch.float32 and audio.device.type == "cpu"
    assert audio.shape == (frames * SAMPLES_PER_FRAME,)
    assert torch.isfinite(audio).all()


def test_fixed_seed_reproduces_and_other_seeds_differ(tiny_generator):
    def codes(seed):
        return tiny_generator.generate_codes("Hi there.", 0, max_audio_length_ms=4 * FRAME_MS, seed=seed)

    assert torch.equal(codes(1), codes(1))
    assert not torch.equal(codes(1), codes(2))


def test_context_audio_must_be_mono(tiny_generator):
    with pytest.raises(ValueError, match="mono"):
        tiny_generator.generate_codes("Hi.", 0, [Segment(0, "Yo.", torch.zeros(2, 1920))], max_audio_length_ms=80)


def test_prompt_plus_frames_beyond_the_context_is_refused(tiny_generator):
    max_seq_len = tiny_generator.config.max_seq_len
    with pytest.raises(ValueError, match=f"exceeds the {max_seq_len}-row context"):
        tiny_generator.generate("Hi.", 0, max_audio_length_ms=max_seq_len * FRAME_MS)
    with pytest.raises(ValueError, match="exceeds"):
        tiny_generator.generate("word " * 500, 0, max_audio_length_ms=90_000)


@pytest.mark.parametrize("kwargs", [{"max_audio_length_ms": FRAME_MS - 1}, {"topk": 0}, {"topk": 10_000},
                                    {"temperature": 0.0}])
def test_invalid_sampling_arguments_are_refused(tiny_generator, kwargs):
    with pytest.raises(ValueError):
        tiny_generator.generate_codes("Hi.", 0, **kwargs)


def test_stops_on_an_all_zero_frame(tiny_model_dir, tmp_path):
    generator = load_generator(tiny_model_dir, device="cpu", cache_dir=tmp_path)
    with torch.no_grad():  # every head scores all tokens alike: greedy picks token 0 everywhere
        generator.model.codebook0_head.weight.zero_()
        generator.model.audio_head.zero_()
    backbone_calls = []
    forward_backbone = generator.model.forward_backbone
    generator.model.forward_backbone = lambda *args: backbone_calls.append(1) or forward_backbone(*args)

    audio = generator.generate("Hi.", 0, max_audio_length_ms=10_000, topk=1)

    assert audio.shape == (0,)
    assert len(backbone_calls) <= EOS_CHECK_FRAMES  # the prompt, then at most the frames before the check


@pytest.mark.parametrize("eos_frame", [1, EOS_CHECK_FRAMES, EOS_CHECK_FRAMES + 1])
def test_codes_end_before_the_first_all_zero_frame(tiny_generator, eos_frame):
    """A scripted sampler: frames before `eos_frame` are all 7, later ones all 0."""
    codebooks, calls = tiny_generator.config.num_codebooks, []

    def sample(logits):
        calls.append(1)
        frame = (len(calls) - 1) // codebooks
        return torch.full((logits.size(0),), 7 if frame < eos_frame else 0)

    tokens, mask = tiny_generator._prompt("Hi.", 0, ())
    with torch.inference_mode():
        codes = tiny_generator._generate_frames(tokens, mask, 50, sample)

    assert codes.shape == (eos_frame, codebooks) and (codes == 7).all()
    assert len(calls) // codebooks <= eos_frame + EOS_CHECK_FRAMES  # frames sampled before noticing
