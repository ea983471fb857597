import pytest


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
