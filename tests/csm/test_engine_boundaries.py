import subprocess
import sys
from pathlib import Path

import csm

SERVICE_PACKAGES = ("flask", "celery", "sqlalchemy", "boto3")


def test_importing_csm_pulls_in_no_service_package():
    code = f"import sys, csm; print([m for m in {SERVICE_PACKAGES!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"


def test_engine_never_reads_the_environment():
    sources = Path(csm.__file__).parent.glob("*.py")
    assert [p.name for p in sources if "os.environ" in p.read_text() or "getenv(" in p.read_text()] == []
