"""Where things are: the repository's root and the stored workflow histories."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STORED = ROOT / "tests" / "histories"
