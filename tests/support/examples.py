"""How hard hypothesis searches: fully in `make test`, half as hard in `make test-fast`.

`make test-fast` sets ``APPROVALS_FAST_TESTS=1`` so the pure tier stays a quick check
while writing code; CI's `make test` always runs the full counts.
"""

from __future__ import annotations

import os


def examples(full: int) -> int:
    """``full`` examples, or about half of them (at least 3) under `make test-fast`."""
    if os.environ.get("APPROVALS_FAST_TESTS"):
        return max(3, full // 2)
    return full
