"""The engine's fixtures. tests/csm needs nothing above it (no service packages), so a GPU machine runs it
alone: python -m pytest tests/csm --confcutdir tests/csm (scripts/gpu-check does)."""

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """The tiny model's ops are too small to split: on a busy machine a second intra-op thread mostly waits
    for its turn (a tiny batch took 10x longer with two threads than with one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A randomly initialised CSM of small size in the real on-disk formats, built once."""
    from csm.tiny import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_generator(tiny_model_dir, tmp_path_factory):
    """The tiny model in fp32 on the CPU, loaded once; tests must not modify it."""
    from csm import load_generator

    return load_generator(
        tiny_model_dir, device="cpu", cache_dir=tmp_path_factory.mktemp("csm-cache"), max_batch_size=4
    )


@pytest.fixture
def script_frames(monkeypatch):
    """script_frames(generator, edit): every sampled frame (rows, K) passes through edit(frame_index, codes),
    which may overwrite codes in place. Returns the batch size of each frame step, in order."""

    def script(generator, edit):
        loop, sizes = generator.frame_loop, []
        sample_frame = loop.sample_frame

        def scripted(rows, steps):
            codes = sample_frame(rows, steps)
            edit(len(sizes), codes)
            sizes.append(codes.size(0))
            return codes

        monkeypatch.setattr(loop, "sample_frame", scripted)
        return sizes

    return script
