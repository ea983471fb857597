import pytest
import torch

from csm import GenerationRequest, Segment, load_generator
from csm.config import FRAME_MS, SAMPLES_PER_FRAME
from csm.batching import STOP_CHECK_FRAMES
from csm.sampling import TOPK_CAP


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


def test_stops_on_an_all_zero_frame(tiny_model_dir, tmp_path, script_frames):
    generator = load_generator(tiny_model_dir, device="cpu", cache_dir=tmp_path)
    with torch.no_grad():  # every head scores all tokens alike: greedy picks token 0 everywhere
        generator.model.codebook0_head.weight.zero_()
        generator.model.audio_head.zero_()
    steps = script_frames(generator, lambda frame, codes: None)

    audio = generator.generate("Hi.", 0, max_audio_length_ms=10_000, topk=1)

    assert audio.shape == (0,)
    assert len(steps) <= STOP_CHECK_FRAMES  # at most the frames before the check


@pytest.mark.parametrize("eos_frame", [1, STOP_CHECK_FRAMES, STOP_CHECK_FRAMES + 1])
def test_codes_end_before_the_first_all_zero_frame(tiny_generator, script_frames, eos_frame):
    """Scripted frames: those before `eos_frame` are all 7, later ones all 0."""
    steps = script_frames(tiny_generator, lambda frame, codes: codes.fill_(7 if frame < eos_frame else 0))

    codes = tiny_generator.generate_codes("Hi.", 0, max_audio_length_ms=50 * FRAME_MS)

    assert codes.shape == (eos_frame, tiny_generator.config.num_codebooks) and (codes == 7).all()
    assert len(steps) <= eos_frame + STOP_CHECK_FRAMES  # frames sampled before noticing


def test_row_counts_match_the_prompt_the_engine_builds(tiny_generator):
    from csm import Segment

    segment = Segment(speaker=1, text="Earlier words.", audio=torch.zeros(5 * 1920 + 7))
    tokens, _mask = tiny_generator._prompt("Now this.", 0, [segment])
    assert tiny_generator.segment_rows(segment) + tiny_generator.text_rows("Now this.", 0) == tokens.size(0)
    assert tiny_generator.frames_for(400) == 5


def test_the_gpu_dtype_runs_on_the_cpu(tiny_model_dir, tmp_path):
    """bf16, as on a GPU: every kind of request in one batch (context, greedy, sampled, a top-k
    past the static cap) renders finite audio of its length, and the model stays in bf16."""
    generator = load_generator(tiny_model_dir, device="cpu", cache_dir=tmp_path, dtype=torch.bfloat16, max_batch_size=4)
    context = [Segment(1, "Earlier words.", 0.1 * torch.randn(SAMPLES_PER_FRAME * 3))]
    frames = [4, 3, 2, 2]
    requests = [
        GenerationRequest("With context.", 0, context, max_audio_length_ms=frames[0] * FRAME_MS, seed=1),
        GenerationRequest("Greedy.", 1, max_audio_length_ms=frames[1] * FRAME_MS, topk=1),
        GenerationRequest("Sampled.", 2, max_audio_length_ms=frames[2] * FRAME_MS, seed=2),
        GenerationRequest("Wide.", 0, max_audio_length_ms=frames[3] * FRAME_MS, topk=TOPK_CAP + 1, seed=3),
    ]
    generator.warm_up()

    results = generator.generate_batch(requests)

    assert {p.dtype for p in generator.model.parameters()} == {torch.bfloat16}
    assert [r.shape for r in results] == [(n * SAMPLES_PER_FRAME,) for n in frames]
    assert all(r.dtype == torch.float32 and torch.isfinite(r).all() for r in results)
