"""The worker writes the workflow modules' bytecode, so the sandbox never compiles them.

The sandbox imports a workflow's module again for every workflow it starts or
rebuilds; with no ``.pyc`` beside the source (``PYTHONDONTWRITEBYTECODE``) each
import compiled the whole module.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

import workflows
from worker.main import compile_workflow_modules


def test_bytecode_is_written_even_when_python_would_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    source = Path(workflows.__path__[0]) / "approval.py"
    cached = Path(importlib.util.cache_from_source(str(source)))
    cached.unlink(missing_ok=True)

    compile_workflow_modules()

    assert cached.exists()
    # What the import system checks before it uses the file instead of the source.
    header = cached.read_bytes()[:16]
    assert header[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(header[8:12], "little") == int(source.stat().st_mtime)
