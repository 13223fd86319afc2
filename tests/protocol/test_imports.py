"""Import contract: the protocol package is sans-I/O, and only the store speaks SQL.

Checked statically (AST of every file) and dynamically (what importing the package loads).
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import phonebridge

SRC = Path(phonebridge.__file__).resolve().parent
PROTOCOL = SRC / "protocol"
STORE = SRC / "store"

FORBIDDEN_IN_PROTOCOL = {"asyncio", "socket", "ssl", "sqlite3", "OpenSSL", "selectors", "threading",
                         "concurrent", "subprocess", "aiohttp", "httpx", "uvicorn", "fastapi"}


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module `path` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base)
                target = f"{prefix}.{node.module}" if node.module else prefix
            else:
                target = node.module or ""
            found.add(target)
            for alias in node.names:  # `from . import types` imports a module too
                found.add(f"{target}.{alias.name}")
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            found.add("<__import__>")
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module":
            found.add("<import_module>")
    return found


PROTOCOL_FILES = sorted(PROTOCOL.rglob("*.py"))


def test_protocol_files_found():
    names = {p.name for p in PROTOCOL_FILES}
    assert {"packet.py", "framing.py", "identity.py", "pairing.py", "certs.py"} <= names


@pytest.mark.parametrize("path", PROTOCOL_FILES, ids=lambda p: p.name)
def test_protocol_module_imports_no_io(path):
    for name in imported_modules(path):
        top = name.split(".")[0]
        assert top not in FORBIDDEN_IN_PROTOCOL, f"{path.name} imports {name}"
        assert not name.startswith("<"), f"{path.name} imports dynamically"
        if top == "phonebridge":
            assert name == "phonebridge.protocol" or name.startswith("phonebridge.protocol."), (
                f"{path.name} imports {name} from outside phonebridge.protocol"
            )


def test_import_resolution_sees_relative_imports():
    """Guard the guard: the resolver must see `from .errors import ...` as phonebridge.protocol.errors."""
    names = imported_modules(PROTOCOL / "framing.py")
    assert "phonebridge.protocol.errors" in names
    assert "phonebridge.protocol.packet" in names


def test_importing_the_protocol_loads_no_io_modules():
    code = (
        "import sys, json, pkgutil, importlib, phonebridge.protocol as p\n"
        "for m in pkgutil.iter_modules(p.__path__): importlib.import_module('phonebridge.protocol.' + m.name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert "phonebridge.protocol.pairing" in loaded
    for name in loaded:
        top = name.split(".")[0]
        assert top not in {"asyncio", "ssl", "sqlite3", "OpenSSL", "_ssl", "_sqlite3"}, name
        if top == "phonebridge":
            assert name in ("phonebridge", "phonebridge.protocol") or name.startswith(
                "phonebridge.protocol."), name


# -- SQL only in the store -----------------------------------------------------------------------------

SQL_STATEMENT = re.compile(
    r"^\s*(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX)|"
    r"DROP\s+TABLE|ALTER\s+TABLE|PRAGMA\s)",
    re.IGNORECASE | re.DOTALL,
)
ALL_FILES = sorted(p for p in SRC.rglob("*.py") if STORE not in p.parents)


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_sqlite_outside_the_store(path):
    names = imported_modules(path)
    assert not any(n.split(".")[0] in {"sqlite3", "_sqlite3", "aiosqlite"} for n in names), (
        f"{path.relative_to(SRC)} imports sqlite"
    )
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in (
            "execute", "executemany", "executescript"
        ):
            pytest.fail(f"{path.relative_to(SRC)}:{node.lineno} calls .{node.func.attr}()")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert not SQL_STATEMENT.match(node.value), (
                f"{path.relative_to(SRC)}:{node.lineno} holds an SQL statement: {node.value[:60]!r}"
            )


def test_the_store_does_use_sqlite():
    """Guard the guard: the patterns do match where SQL really is."""
    found = False
    for path in STORE.rglob("*.py"):
        if "sqlite3" in imported_modules(path):
            found = True
            text = path.read_text(encoding="utf-8")
            assert "execute" in text
    assert found
    assert SQL_STATEMENT.match("SELECT * FROM trusted_devices ORDER BY name")
    assert SQL_STATEMENT.match("INSERT INTO trusted_devices (id) VALUES (?)")
