"""The API process stays light: it never imports torch, the engine or worker code."""
import os
import subprocess
import sys

from api import create_app
from provision import init
from support import ROOT, make_settings

CHECK = """
import sys
import api.wsgi
heavy = sorted(name for name in sys.modules if name.split(".")[0] in {"torch", "csm", "worker", "transformers", "moshi"})
print(heavy)
sys.exit(1 if heavy else 0)
"""


def test_the_api_never_imports_torch(tmp_path):
    env = {**os.environ, "CSM_DATA_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", CHECK], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_readiness_names_the_dependency_that_is_down(tmp_path):
    settings = make_settings(CSM_DATA_DIR=str(tmp_path), BROKER_URL="redis://127.0.0.1:1/0")
    init(settings)
    response = create_app(settings).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "failed": ["broker"]}
