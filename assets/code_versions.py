"""Dagster code versions from source text: an asset's version changes when the code computing it does.

Every asset declares `code_version=module_code_version(__name__)`, most through `versioned_asset`
(which also takes the description from the docstring). The version is the first 16 hex
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg

REPOSITORY = Path(__file__).resolve().parents[1]


def versioned_asset(**options: Any) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """`dg.asset(**options)` with the code version of the function's module; Dagster takes the
    description from the docstring."""

    def declare(compute: Callable[..., Any]) -> dg.AssetsDefinition:
        return dg.asset(code_version=module_code_version(compute.__module__), **options)(compute)

    return declare


def module_code_version(module: str, root: Path = REPOSITORY) -> str:
    """The code version of `module` (a dotted name under `root`): its import closure's source hash.

    Files are read on every call (a process that outlives an edit sees the edit); only the parse of
    a file's imports is cached, keyed by its contents.
    """
    tree = _SourceTree(root)
    digest = hashlib.sha256()
    for name in tree.closure(module):
        digest.update(name.encode() + b"\0")
        digest.update(tree.source(name).replace(b"\r\n", b"\n") + b"\0")
    return digest.hexdigest()[:16]


def source_closure(module: str, root: Path = REPOSITORY) -> list[str]:
    """`module` and every module of ours it imports, transitively, sorted by name.

    Raises ModuleNotFoundError if `module` has no source file under `root`.
    """
    return _SourceTree(root).closure(module)


class _SourceTree:
    """The modules under one root, each file looked up once (one tree per computation)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._files: dict[str, Path | None] = {}

    def file(self, name: str) -> Path | None:
        """The source file of module `name`, or None when it is not one of ours."""
        if name not in self._files:
            base = self.root.joinpath(*name.split("."))
            candidates = (base / "__init__.py", base.with_suffix(".py"))
            ours = (self.root / name.split(".")[0] / "__init__.py").is_file()
            self._files[name] = next((c for c in candidates if c.is_file()), None) if ours else None
        return self._files[name]

    def source(self, name: str) -> bytes:
        path = self.file(name)
        assert path is not None, f"{name} is one of ours, so it has a file"
        return path.read_bytes()

    def closure(self, module: str) -> list[str]:
        if self.file(module) is None:
            raise ModuleNotFoundError(f"no source file for {module!r} under {self.root}")
        seen: set[str] = set()
        pending = [module]
        while pending:
            name = pending.pop()
            if name in seen or self.file(name) is None:
                continue
            seen.add(name)
            parts = name.split(".")
            pending += [".".join(parts[:depth]) for depth in range(1, len(parts))]  # parents run first
            pending += self.imports(name)
        return sorted(seen)

    def imports(self, name: str) -> list[str]:
        """Modules of ours named by the import statements of module `name` (anywhere in the file)."""
        path = self.file(name)
        assert path is not None
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for base, names in _import_statements(path.read_bytes(), package):
            if not names:
                found.add(base)
            for alias in names:
                # `from a.b import c` imports the module a.b.c when there is one, else a name of a.b.
                child = f"{base}.{alias}"
                found.add(child if self.file(child) is not None else base)
        return sorted(n for n in found if self.file(n) is not None)


@functools.cache
def _import_statements(source: bytes, package: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(module, imported names) per import statement that runs; `import a.b` gives ("a.b", ())."""
    statements: list[tuple[str, tuple[str, ...]]] = []
    for node in _run_time_statements(ast.parse(source).body):
        if isinstance(node, ast.Import):
            statements += [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            statements.append((base, tuple(alias.name for alias in node.names)))
    return tuple(statements)


def _run_time_statements(statements: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement in `statements` and the blocks nested in them (function and class bodies,
    branches, loops, handlers), except the bodies of `if TYPE_CHECKING:` (they never run)."""
    pending = list(reversed(statements))
    while pending:
        statement = pending.pop()
        yield statement
        if isinstance(statement, ast.If) and _is_type_checking(statement.test):
            blocks = [statement.orelse]
        else:
            blocks = [getattr(statement, name, []) for name in ("body", "orelse", "finalbody")]
            blocks += [handler.body for handler in getattr(statement, "handlers", [])]
            blocks += [case.body for case in getattr(statement, "cases", [])]
        for block in reversed(blocks):
            pending += reversed(block)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )
