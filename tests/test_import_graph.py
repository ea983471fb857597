"""Dependencies run one way: no project module imports, even inside a function, a module that
imports it back (directly or through others)."""
import ast

from support import ROOT

PACKAGES = ("api", "client", "csm", "jobs", "storage", "webhooks", "worker")
TOP_LEVEL = ("cli", "config", "demo", "logs", "provision")


def project_modules() -> dict[str, ast.Module]:
    files = [ROOT / f"{name}.py" for name in TOP_LEVEL]
    files += [path for package in PACKAGES for path in (ROOT / package).rglob("*.py")]
    modules = {}
    for path in files:
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = ast.parse(path.read_text(), str(path))
    return modules


def imports(name: str, tree: ast.Module, known: set[str]) -> set[str]:
    """The project modules `name` imports anywhere in its file."""
    package = name if any(m.startswith(name + ".") for m in known) else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}".rstrip(".")
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found |= {target for target in targets if target in known and target != name}
    return found


def test_no_module_imports_one_that_imports_it_back():
    modules = project_modules()
    graph = {name: imports(name, tree, set(modules)) for name, tree in modules.items()}
    cycles = []

    def visit(name: str, path: list[str]) -> None:
        for target in sorted(graph[name]):
            if target in path:
                cycles.append(path[path.index(target):] + [target])
            elif target not in done:
                visit(target, path + [target])
        done.add(name)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    assert cycles == []
