"""Locustfiles: the course's, and your own, read before Locust runs them.

``locustfile`` finds the course's locustfile by name ("pages", "files") or takes the path of
your own; ``start_locustfile`` copies the skeleton for you to edit, once. ``check_locustfile``
reads a file with ``ast`` (nothing of it runs here) and refuses what Locust could not run, with
a message that says why: no such file, not Python, no ``User`` class, a ``User`` without a task.
"""

from __future__ import annotations

import ast
import builtins
import shutil
from pathlib import Path

from labkit import scripts
from labkit.locust_lab.results import LocustError

LOCUSTFILES = Path(scripts.__file__).with_name("locustfiles")
SCHEMES = {"pages": "http", "files": "tcp"}  # how each locustfile names its host
SKELETON = LOCUSTFILES / "skeleton_pages.py"  # where a student's own locustfile starts


class LocustfileError(LocustError, ValueError):
    """A file that Locust cannot run as a locustfile; the message says why."""


def locustfile(name: str | Path) -> Path:
    """The course's locustfile ``name`` ("pages", "files"), or the path of your own: checked
    (``check_locustfile``) and made absolute, since Locust runs in a folder of its own."""
    if isinstance(name, str) and name in SCHEMES:
        return LOCUSTFILES / f"{name}.py"
    if isinstance(name, str) and "/" not in name and not name.endswith(".py"):
        raise ValueError(
            f"no locustfile {name!r}; choose one of: {', '.join(SCHEMES)}, or give the path "
            "of your own (it ends in .py)"
        )
    path = Path(name).resolve()
    check_locustfile(path)
    return path


def start_locustfile(target: str | Path) -> Path:
    """Copy the skeleton locustfile (``SKELETON``) to ``target`` unless ``target`` exists: your
    work is never overwritten. Returns ``target``. Says the same either way, so a lesson that
    calls it prints the same whether the copy is new or yours."""
    target = Path(target)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SKELETON, target)
    print(f"{target.name}: yours to edit (copied from the skeleton if it was not there yet; "
          "never overwritten)")  # fmt: skip
    return target


# -- is it a locustfile? ----------------------------------------------------------------------
USER_CLASSES = {"User", "HttpUser", "FastHttpUser"}  # what Locust's own users derive from


def check_locustfile(path: str | Path) -> list[str]:
    """Read ``path`` as Locust would load it, without running any of it (``ast``), and return
    the names of the ``User`` classes it would run; raise ``LocustfileError`` with the reason
    when it is not a locustfile. Locust imports the file (``.py`` only), and runs every
    module-level class that derives from ``User`` and is not ``abstract``
    (``locust/util/load_locustfile.py``, ``is_user_class``). A user with no task makes no
    request: it logs "No tasks defined" (``locust/user/task.py``,
    ``DefaultTaskSet.get_next_task``), waits, and tries again (``TaskSet.run``).
    A class whose base comes from another module cannot be judged here: it is given the
    benefit of the doubt, and Locust has the last word."""
    path = Path(path)
    tree = _parse(path)
    locust_names, star = _locust_imports(tree)
    users: dict[str, ast.ClassDef] = {}  # every User class of the file, abstract or not
    classes: dict[str, bool] = {}  # every class of the file so far: is it a User?
    doubtful = []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        kinds = [_base_kind(b, locust_names, star, classes) for b in node.bases]
        classes[node.name] = "user" in kinds
        if "user" in kinds:
            users[node.name] = node
        elif "unknown" in kinds:
            doubtful.append(node.name)
    runnable = [name for name, node in users.items() if not _abstract(node)]
    with_tasks = [name for name in runnable if _has_task(users[name], users, locust_names, star)]
    if not with_tasks and doubtful:
        return doubtful
    if not runnable:
        raise LocustfileError(_no_user(path.name, users, tree))
    if not with_tasks and _uses_task_unimported(tree, locust_names, star):
        raise LocustfileError(
            f"{path.name} marks tasks with @task but does not import task: from locust import task"
        )
    if not with_tasks:
        raise LocustfileError(
            f"{path.name}: {' and '.join(runnable)} has no task. Its users would make no "
            'request: each would log "No tasks defined", again after every wait. Mark a '
            "method as a task: @task above its def (from locust import task)."
        )
    return with_tasks


def _parse(path: Path) -> ast.Module:
    name = path.name
    if not path.exists():
        raise LocustfileError(f"{name}: no such file in {path.parent.name or '.'}/")
    if path.is_dir():
        raise LocustfileError(f"{name} is a folder: give the path of one locustfile in it")
    if path.suffix != ".py":
        raise LocustfileError(f"{name}: Locust loads only Python files, named NAME.py")
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=name)
    except UnicodeDecodeError:
        raise LocustfileError(f"{name} is not text: a locustfile is a Python file") from None
    except SyntaxError as err:
        raise LocustfileError(
            f"{name}, line {err.lineno}: {err.msg}. A locustfile is a Python module, and "
            "this one is not valid Python."
        ) from None


def _locust_imports(tree: ast.Module) -> tuple[dict[str, str], bool]:
    """{local name: what it is in locust} for each ``from locust... import X as Y`` (modules
    imported whole as ``locust``: ``"module"``), and whether ``from locust import *`` is there."""
    names: dict[str, str] = {}
    star = False
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "locust":
            for alias in node.names:
                star = star or alias.name == "*"
                names[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "locust":
                    names[alias.asname or alias.name.split(".")[0]] = "module"
    return names, star


def _base_kind(
    base: ast.expr, locust_names: dict[str, str], star: bool, classes: dict[str, bool]
) -> str:
    """ "user" (a User class of Locust, or of this file), "other" (not a User), or "unknown"
    (a class from another module). ``classes``: this file's classes so far, True for Users."""
    if isinstance(base, ast.Name):
        if base.id in classes:
            return "user" if classes[base.id] else "other"
        if base.id in locust_names:
            return "user" if locust_names[base.id] in USER_CLASSES else "other"
        if star and base.id in USER_CLASSES:
            return "user"
        return "other" if hasattr(builtins, base.id) else "unknown"
    if isinstance(base, ast.Attribute):
        root = base.value
        while isinstance(root, ast.Attribute):
            root = root.value
        if isinstance(root, ast.Name) and locust_names.get(root.id) == "module":
            return "user" if base.attr in USER_CLASSES else "other"
    return "unknown"


def _abstract(node: ast.ClassDef) -> bool:
    return any(
        isinstance(s, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "abstract" for t in s.targets)
        and isinstance(s.value, ast.Constant)
        and s.value.value is True
        for s in node.body
    )


def _has_task(
    node: ast.ClassDef, users: dict[str, ast.ClassDef], locust_names: dict[str, str], star: bool
) -> bool:
    """A method marked ``@task`` (or ``@task(3)``, ``@locust.task``), or a ``tasks = ...``
    attribute, here or in a User class of this file it derives from."""
    for s in node.body:
        if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef):
            if any(_is_task(d, locust_names, star) for d in s.decorator_list):
                return True
        targets = s.targets if isinstance(s, ast.Assign) else [s.target] if isinstance(
            s, ast.AnnAssign) and s.value is not None else []  # fmt: skip
        if any(isinstance(t, ast.Name) and t.id == "tasks" for t in targets):
            return True
    return any(
        _has_task(users[b.id], users, locust_names, star)
        for b in node.bases
        if isinstance(b, ast.Name) and b.id in users and users[b.id] is not node
    )


def _is_task(decorator: ast.expr, locust_names: dict[str, str], star: bool) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    if isinstance(target, ast.Name):
        return locust_names.get(target.id) == "task" or (star and target.id == "task")
    return isinstance(target, ast.Attribute) and target.attr == "task"


def _uses_task_unimported(tree: ast.Module, locust_names: dict[str, str], star: bool) -> bool:
    if star or "task" in locust_names:
        return False
    return any(
        isinstance(d, ast.Name)
        and d.id == "task"
        or isinstance(d, ast.Call)
        and isinstance(d.func, ast.Name)
        and d.func.id == "task"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for d in node.decorator_list
    )


def _no_user(name: str, users: dict[str, ast.ClassDef], tree: ast.Module) -> str:
    if users:  # every one of them abstract
        return (
            f"{name}: every User class in it is abstract ({', '.join(users)}), and Locust "
            "runs none of those: remove abstract = True from the one to run."
        )
    classes = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
    seen = f" (its classes, {', '.join(classes)}, are not)" if classes else ""
    return (
        f"{name} defines no User class{seen}. Locust runs the classes that derive from "
        "HttpUser, FastHttpUser or User: from locust import HttpUser, then "
        "class Reader(HttpUser): ..."
    )
