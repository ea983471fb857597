import pytest


@pytest.fixture
def script_frames(monkeypatch):
    """script_frames(generator, edit): every sampled frame (rows, K) passes through edit(frame_index, codes),
    which may overwrite codes in place. Returns the batch size of each frame step, in order."""

    def script(generator, edit):
        model, sizes = generator.model, []
        sample_frame = model.sample_frame

        def scripted(hidden, sample):
            codes = sample_frame(hidden, sample)
            edit(len(sizes), codes)
            sizes.append(codes.size(0))
            return codes

        monkeypatch.setattr(model, "sample_frame", scripted)
        return sizes

    return script
