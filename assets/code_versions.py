"""Dagster code versions from source text: an asset's version changes when the code computing it does.

Every asset declares `code_version=module_code_version(__name__)`. The version is the first 16 hex
digits of a SHA-256 over the source text of the asset's module and of every module of ours that
it imports, directly or through other modules of ours (`import` and `from … import` statements
anywhere in a file, function bodies included, except under `if TYPE_CHECKING:`; the packages whose
`__init__.py` run on the way are included too). "Ours" means a top-level package beside `assets/` in this repository (curation,
training, evaluation, serving, model, media, orchestration …); third-party packages are not hashed,
so upgrading torch or dagster does not change a version. Modules are hashed in name order with
`\\r\\n` read as `\\n`, so the version is the same on every machine that has the same files.

Consequences: any edit of those files (a comment included) makes the asset, and through the data
versions everything downstream, stale in `videofoundry run`; an edit of a module the asset never
imports does not. Assets in one module share a version. Imports made by string at run time
(`importlib.import_module(name)`) and data files read by the code are not followed.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from collections.abc import Iterator
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def module_code_version(module: str, root: Path = REPOSITORY) -> str:
    """The code version of `module` (a dotted name under `root`): its import closure's source hash."""
    return _code_version(module, root.resolve())


@functools.cache
def _code_version(module: str, root: Path) -> str:
    digest = hashlib.sha256()
    for name in source_closure(module, root):
        path = _module_file(name, root)
        assert path is not None, f"{name} is in the closure, so it has a file"
        digest.update(name.encode() + b"\0")
        digest.update(path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return digest.hexdigest()[:16]


def source_closure(module: str, root: Path = REPOSITORY) -> list[str]:
    """`module` and every module of ours it imports, transitively, sorted by name.

    Raises ModuleNotFoundError if `module` has no source file under `root`.
    """
    if _module_file(module, root) is None:
        raise ModuleNotFoundError(f"no source file for {module!r} under {root}")
    seen: set[str] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        if name in seen or _module_file(name, root) is None:
            continue
        seen.add(name)
        parts = name.split(".")
        pending += [".".join(parts[:depth]) for depth in range(1, len(parts))]  # parent packages run first
        pending += _imports(name, root)
    return sorted(seen)


def _module_file(name: str, root: Path) -> Path | None:
    """The source file of module `name` under `root`, or None when it is not one of ours."""
    base = root.joinpath(*name.split("."))
    if not (root / name.split(".")[0] / "__init__.py").is_file():
        return None
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def _imports(name: str, root: Path) -> tuple[str, ...]:
    """Modules of ours named by the import statements of module `name` (anywhere in the file)."""
    path = _module_file(name, root)
    assert path is not None
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _run_time_nodes(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from a.b import c` imports the module a.b.c when there is one, else a name of a.b.
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if _module_file(child, root) is not None else base)
    return tuple(sorted(n for n in found if _module_file(n, root) is not None))


def _run_time_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of `tree` except the bodies of `if TYPE_CHECKING:` blocks (they never run)."""
    pending = [tree]
    while pending:
        node = pending.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            pending += node.orelse
        else:
            pending += ast.iter_child_nodes(node)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )
