from datetime import timedelta

import pytest

from config import ClientSettings, Settings, SettingsError


def test_nothing_set_is_the_embedded_default(tmp_path):
    settings = Settings.from_env({"CSM_DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'csm-batch.db'}"
    assert settings.uses_embedded_broker
    assert settings.s3_bucket is None
    assert settings.local_store_dir == tmp_path / "objects"


@pytest.mark.parametrize(
    "name, value",
    [
        ("MAX_ATTEMPTS", "three"), ("TASK_TIME_LIMIT_S", "-5"), ("SWEEP_INTERVAL_S", "0"), ("LOG_FORMAT", "xml"),
        ("CSM_COMPILE", "sometimes"), ("CSM_CUDA_GRAPHS", "auto"),
        ("SYNC_MAX_WAITING", "0"), ("SYNC_WAIT_S", "soon"), ("OPENAI_VOICES", "alloy"), ("OPENAI_VOICES", "alloy=-1"),
        ("RESULT_TTL_HOURS", "0"), ("RESULT_TTL_HOURS", "nan"), ("RESULT_TTL_HOURS", "inf"), ("RESULT_TTL_HOURS", "1e300"),
        ("RESULT_TTL_HOURS", "a day"), ("S3_READ_TIMEOUT_S", "nan"), ("SYNC_WAIT_S", "inf"),
    ],
)
def test_a_bad_value_names_its_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_soft_limit_must_be_below_hard_limit():
    with pytest.raises(SettingsError, match="TASK_SOFT_TIME_LIMIT_S"):
        Settings.from_env({"TASK_SOFT_TIME_LIMIT_S": "100", "TASK_TIME_LIMIT_S": "100"})


def test_worker_metrics_need_a_folder_for_the_children(tmp_path):
    with pytest.raises(SettingsError, match="PROMETHEUS_MULTIPROC_DIR"):
        Settings.from_env({"WORKER_METRICS_PORT": "9100"})
    with pytest.raises(SettingsError, match="WORKER_METRICS_PORT"):
        Settings.from_env({"WORKER_METRICS_PORT": "70000", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    settings = Settings.from_env({"WORKER_METRICS_PORT": "9100", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    assert (settings.worker_metrics_port, settings.metrics_dir) == (9100, tmp_path)


@pytest.mark.parametrize("raw, expected", [(None, None), ("auto", None), ("false", False), ("1", True)])
def test_compile_is_auto_by_default_or_a_boolean(raw, expected):
    settings = Settings.from_env({} if raw is None else {"CSM_COMPILE": raw})
    assert settings.csm_compile is expected and settings.csm_cuda_graphs is True


def test_openai_voice_names_map_to_speakers():
    assert Settings.from_env({}).openai_voices["alloy"] == 0
    assert Settings.from_env({"OPENAI_VOICES": "alloy=3, nova = 12"}).openai_voices == {"alloy": 3, "nova": 12}


def test_client_settings_need_a_key_and_an_http_url():
    with pytest.raises(SettingsError, match="CSM_API_KEY is not set"):
        ClientSettings.from_env({})
    with pytest.raises(SettingsError, match="CSM_API_URL"):
        ClientSettings.from_env({"CSM_API_KEY": "k", "CSM_API_URL": "localhost:8000"})
    with pytest.raises(SettingsError, match="CSM_API_TIMEOUT_S"):
        ClientSettings.from_env({"CSM_API_KEY": "k", "CSM_API_TIMEOUT_S": "0"})
    for unbounded in ("nan", "inf"):  # requests would wait forever, or fail on its socket
        with pytest.raises(SettingsError, match="CSM_API_TIMEOUT_S"):
            ClientSettings.from_env({"CSM_API_KEY": "k", "CSM_API_TIMEOUT_S": unbounded})
    client = ClientSettings.from_env({"CSM_API_KEY": "k", "CSM_API_URL": "https://tts.example.com/"})
    assert (client.api_url, client.api_key, client.timeout_s) == ("https://tts.example.com", "k", 30.0)


def test_outputs_are_kept_forever_unless_a_ttl_is_set():
    assert Settings.from_env({}).result_ttl is None
    assert Settings.from_env({"RESULT_TTL_HOURS": "0.5"}).result_ttl == timedelta(minutes=30)
