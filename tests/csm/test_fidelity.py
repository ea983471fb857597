"""Greedy codes of our engine equal transformers' CsmForConditionalGeneration on the same weights."""

import pytest
import torch
from transformers import CsmForConditionalGeneration

from csm import SAMPLE_RATE, Segment
from csm.config import FRAME_MS

FRAMES = 10


@pytest.fixture(scope="module")
def reference(tiny_model_dir):
    # the checkpoint has no codec weights: transformers initialises an unused codec randomly
    return CsmForConditionalGeneration.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


def reference_codes(reference, inputs_embeds: torch.Tensor) -> torch.Tensor:
    """(1, S, H) prompt embeddings -> (FRAMES, K) greedy codes from transformers."""
    with torch.inference_mode():
        out = reference.generate(inputs_embeds=inputs_embeds, max_new_tokens=FRAMES, do_sample=False,
                                 depth_decoder_do_sample=False)
    return out[0]


def assert_non_trivial(codes: torch.Tensor) -> None:
    assert codes.shape[0] == FRAMES
    assert len({tuple(row) for row in codes.tolist()}) == FRAMES  # every frame differs
    assert codes.unique().numel() > FRAMES  # and the codebooks within a frame vary


def test_greedy_codes_match_transformers_without_context(tiny_generator, reference):
    ours = tiny_generator.generate_codes("Hello there.", 0, max_audio_length_ms=FRAMES * FRAME_MS, topk=1)

    ids = torch.tensor([tiny_generator.tokenizer.encode("[0]Hello there.")])
    assert ids[0, 0] == tiny_generator.tokenizer.bos_token_id and ids[0, -1] == tiny_generator.tokenizer.eos_token_id
    with torch.inference_mode():
        theirs = reference.generate(input_ids=ids, max_new_tokens=FRAMES, do_sample=False,
                                    depth_decoder_do_sample=False)[0]

    assert_non_trivial(ours)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_greedy_codes_match_transformers_with_context(tiny_generator, reference):
    gen = torch.Generator().manual_seed(0)
    audio = [0.1 * torch.randn(SAMPLE_RATE, generator=gen), 0.1 * torch.randn(SAMPLE_RATE // 2, generator=gen)]
    context = [Segment(1, "How are you?", audio[0]), Segment(0, "Fine, thanks.", audio[1])]
    ours = tiny_generator.generate_codes("And you?", 1, context, max_audio_length_ms=FRAMES * FRAME_MS, topk=1)

    # transformers sees the same Mimi codes: we embed the prompt rows with its own modules
    tokenizer, config = tiny_generator.tokenizer, tiny_generator.config
    eos_frame = torch.full((1, config.num_codebooks), config.codebook_eos_token_id)
    rows = []
    with torch.inference_mode():
        for segment in context:
            codes = tiny_generator.encode_audio(segment.audio)  # (frames, K)
            assert codes.unique().numel() > 1
            text_ids = torch.tensor([tokenizer.encode(f"[{segment.speaker}]{segment.text}")])
            rows.append(reference.embed_text_tokens(text_ids))
            rows.append(reference.backbone_model.embed_tokens(torch.cat([codes, eos_frame])[None]))
        rows.append(reference.embed_text_tokens(torch.tensor([tokenizer.encode("[1]And you?")])))
    theirs = reference_codes(reference, torch.cat(rows, dim=1))

    assert_non_trivial(ours)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    without_context = tiny_generator.generate_codes("And you?", 1, max_audio_length_ms=FRAMES * FRAME_MS, topk=1)
    assert not torch.equal(ours, without_context)
