import pytest
from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

from csm import download


def raising(error):
    def fail(*args, **kwargs):
        raise error
    return fail


@pytest.mark.parametrize("error, message", [
    (GatedRepoError("403 gated"), "is gated"),
    (RepositoryNotFoundError("404"), "was not found"),
    (LocalEntryNotFoundError("offline"), "could not reach the Hugging Face Hub"),
])
def test_hub_errors_become_a_clear_message_and_exit_code(monkeypatch, capsys, tmp_path, error, message):
    monkeypatch.setattr(download, "snapshot_download", raising(error))

    assert download.main(["sesame/csm-1b", "--hf-cache-dir", str(tmp_path)]) == 1
    assert message in capsys.readouterr().err


def test_non_hub_spec_is_refused(capsys):
    assert download.main(["tiny"]) == 2
    assert "not a hub id" in capsys.readouterr().err
