"""The webhooks package is pure standard library: the API and the worker both import it."""
import ast
import subprocess
import sys
from pathlib import Path

import webhooks

FORBIDDEN = ("flask", "celery", "sqlalchemy", "torch", "requests", "boto3", "api", "worker", "jobs", "config")


def test_importing_webhooks_pulls_in_no_service_package():
    code = f"import sys, webhooks; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r})))"
    root = Path(webhooks.__file__).parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"


def test_webhooks_imports_only_the_standard_library_and_itself():
    imported = set()
    for path in Path(webhooks.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    assert imported - set(sys.stdlib_module_names) == {"webhooks"}


def test_webhooks_never_reads_the_environment():
    sources = Path(webhooks.__file__).parent.glob("*.py")
    assert [p.name for p in sources if "os.environ" in p.read_text() or "getenv(" in p.read_text()] == []
