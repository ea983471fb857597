"""CUDA's flash and efficient attention kernels return their output as a transposed view of (B, M, H, K)
storage, unlike CPU's contiguous output. Emulated here so that a CPU run meets the layout a GPU gives."""

import torch
import torch.nn.functional as F

from csm import GenerationRequest
from csm.config import FRAME_MS


def test_codes_do_not_depend_on_the_attention_output_layout(tiny_generator, monkeypatch):
    def request():
        return tiny_generator.generate_codes_batch([
            greedy("Hi there.", 6), greedy("A longer sentence than that.", 4)])

    contiguous = request()
    sdpa, layouts = F.scaled_dot_product_attention, []

    def cuda_layout(*args, **kwargs):
        out = sdpa(*args, **kwargs)  # (B, H, M, K)
        out = out.transpose(1, 2).contiguous().transpose(1, 2)
        layouts.append(out.is_contiguous())
        return out

    monkeypatch.setattr(F, "scaled_dot_product_attention", cuda_layout)
    transposed = request()

    assert layouts and not any(layouts)
    for ours, theirs in zip(transposed, contiguous):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def greedy(text, frames):
    return GenerationRequest(text, 0, max_audio_length_ms=frames * FRAME_MS, topk=1)
