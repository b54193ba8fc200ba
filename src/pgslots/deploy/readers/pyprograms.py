"""The project's own Python programs that are plainly a server or a worker.

`python app.py` is usually a launcher whose control flow pgslots does not follow (an unknown
group). Two shapes are plain enough to read from the file's syntax tree, without running it:

- gevent's WSGI server (`gevent.pywsgi.WSGIServer(addr, get_wsgi_application())`): one
  greenlet per request; with `spawn=N` (or `spawn=Pool(N)`) at most N at once, otherwise no cap.
  After `monkey.patch_all()` Django's per-thread connections become per-greenlet ones.
- an RQ worker (`Worker(queues).work()`, also through a class of the project one import away,
  `DataHubScheduler().work(...)` whose module runs `Worker(...).work(...)`): rq's `Worker`
  forks a work horse for each job, which exits after it (its connection ends with it);
  `SimpleWorker` runs the jobs in the worker process, whose connection then stays open.
  A `work(burst=True)` worker exits when its queues are empty: it is not the long-running one.
"""

from __future__ import annotations

import ast
import dataclasses

from pgslots.deploy.readers import RepoFiles
from pgslots.deploy.readers.pyeval import ModuleResolver
from pgslots.deploy.readers.pysource import parse_source

GEVENT_SERVERS = frozenset({"gevent.pywsgi.WSGIServer", "gevent.wsgi.WSGIServer"})
GEVENT_PATCHES = frozenset({"gevent.monkey.patch_all", "gevent.monkey.patch_thread"})
FORKING_WORKERS = frozenset(
    {"Worker", "HerokuWorker", "RoundRobinWorker", "RandomWorker", "SpawnWorker"}
)
IN_PROCESS_WORKERS = frozenset({"SimpleWorker"})


@dataclasses.dataclass(frozen=True)
class PythonProgram:
    kind: str  # "gevent-wsgi" or "rq-worker"
    path: str  # the file where the server or worker is started
    line: int
    spawn: int | None = None  # gevent: the greenlet pool's size; None: no cap (or unreadable)
    spawn_read: bool = True  # gevent: False when `spawn=` is there but not a number pgslots reads
    patched: bool = False  # gevent: monkey.patch_all() (thread-locals become greenlet-locals)
    forks: bool = True  # rq: a work horse per job (Worker), else jobs in-process (SimpleWorker)
    via: str = ""  # the script that reaches it through a project class (rq), when not `path`


def read_program(repo: RepoFiles, path: str, resolver: ModuleResolver) -> PythonProgram | None:
    """What `python PATH` plainly is, or None when it is anything else (a launcher)."""
    tree = _parse(repo, path)
    if tree is None:
        return None
    names = _imported_names(tree)
    gevent = _gevent_server(tree, names, path)
    if gevent is not None:
        return gevent
    worker = _rq_worker(tree, names, path)
    if worker is not None:
        return worker
    # `with DataHubScheduler() as queue: queue.work(...)`: the project's class, one import away.
    for dotted in _work_receivers(tree, names):
        module = dotted.rsplit(".", 1)[0]
        found = resolver.find(module)
        inner = _parse(repo, found) if found else None
        if inner is None or found is None:
            continue
        worker = _rq_worker(inner, _imported_names(inner), found)
        if worker is not None:
            return dataclasses.replace(worker, via=path)
    return None


def _parse(repo: RepoFiles, path: str) -> ast.Module | None:
    text = repo.text(path)
    if text is None:
        return None
    try:
        return parse_source(text, path)[0]
    except (SyntaxError, ValueError):
        return None


def _imported_names(tree: ast.Module) -> dict[str, str]:
    """Local name -> dotted origin (`WSGIServer` -> `gevent.pywsgi.WSGIServer`)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
    return names


def _dotted(node: ast.AST, names: dict[str, str]) -> str:
    if isinstance(node, ast.Name):
        return names.get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, names)
        return f"{base}.{node.attr}" if base else ""
    return ""


def _gevent_server(tree: ast.Module, names: dict[str, str], path: str) -> PythonProgram | None:
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    patched = any(_dotted(call.func, names) in GEVENT_PATCHES for call in calls)
    for call in calls:
        if _dotted(call.func, names) not in GEVENT_SERVERS:
            continue
        spawn_node = next((k.value for k in call.keywords if k.arg == "spawn"), None)
        if spawn_node is None and len(call.args) >= 4:
            spawn_node = call.args[3]  # WSGIServer(listener, application, backlog, spawn)
        spawn, read = _spawn(spawn_node, names)
        return PythonProgram(
            "gevent-wsgi", path, call.lineno, spawn=spawn, spawn_read=read, patched=patched
        )
    return None


def _spawn(node: ast.AST | None, names: dict[str, str]) -> tuple[int | None, bool]:
    """(pool size, read): `spawn=100`, `spawn=Pool(100)`; absent or "default": no cap."""
    if node is None or (isinstance(node, ast.Constant) and node.value in ("default", None)):
        return None, True
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value, True
    if (
        isinstance(node, ast.Call)
        and _dotted(node.func, names).rsplit(".", 1)[-1] == "Pool"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, int)
    ):
        return node.args[0].value, True
    return None, False


def _bound_classes(tree: ast.Module, names: dict[str, str]) -> dict[str, str]:
    """Variables bound to an instance, and the dotted name of its class: `worker = Worker(...)`,
    `with Queue() as q:`."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.With):
            for item in node.items:
                if isinstance(item.context_expr, ast.Call) and isinstance(
                    item.optional_vars, ast.Name
                ):
                    bound[item.optional_vars.id] = _dotted(item.context_expr.func, names)
        elif (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            bound[node.targets[0].id] = _dotted(node.value.func, names)
    return bound


def _rq_worker(tree: ast.Module, names: dict[str, str], path: str) -> PythonProgram | None:
    """The rq worker whose `.work()` (not `burst=True`) the module runs."""
    bound = _bound_classes(tree, names)
    found: list[tuple[bool, int]] = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "work"
        ):
            continue
        if any(
            k.arg == "burst" and isinstance(k.value, ast.Constant) and k.value.value is True
            for k in node.keywords
        ):
            continue
        receiver = node.func.value
        if isinstance(receiver, ast.Call):
            cls = _dotted(receiver.func, names)
        elif isinstance(receiver, ast.Name):
            cls = bound.get(receiver.id, "")
        else:
            cls = ""
        if not cls.startswith("rq."):
            continue
        short = cls.rsplit(".", 1)[-1]
        if short in FORKING_WORKERS or short in IN_PROCESS_WORKERS:
            found.append((short in FORKING_WORKERS, node.lineno))
    if not found:
        return None
    forks = all(f for f, _ in found)  # one in-process worker is enough to hold a connection
    line = next(line for f, line in found if f == forks)
    return PythonProgram("rq-worker", path, line, forks=forks)


def _work_receivers(tree: ast.Module, names: dict[str, str]) -> list[str]:
    """The project classes whose `.work()` the script calls (`with X() as q: q.work(...)`)."""
    bound = _bound_classes(tree, names)
    out: list[str] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "work"
        ):
            receiver = node.func.value
            dotted = (
                _dotted(receiver.func, names)
                if isinstance(receiver, ast.Call)
                else bound.get(receiver.id, "")
                if isinstance(receiver, ast.Name)
                else ""
            )
            if "." in dotted and not dotted.startswith("rq.") and dotted not in out:
                out.append(dotted)
    return out
