"""What ``make dev`` and ``make test`` install into a new virtualenv (``make -n``: nothing runs)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.paths import ROOT


def planned(target: str, venv: Path) -> list[str]:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    # Under `make test` this runs inside make: its MAKEFLAGS and MAKELEVEL would make the
    # inner make print "Entering/Leaving directory" lines among the commands.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", f"VENV={venv}", target],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=True,
    )
    return result.stdout.splitlines()


def test_make_dev_installs_what_running_needs_and_no_test_tools(tmp_path: Path) -> None:
    lines = planned("dev", tmp_path / "venv")
    installs = [line for line in lines if "pip install" in line]
    assert installs == [f"{tmp_path / 'venv'}/bin/python -m pip install -e ."]
    assert lines[-1] == f"{tmp_path / 'venv'}/bin/approvals dev"


def test_make_test_installs_the_test_extras(tmp_path: Path) -> None:
    installs = [line for line in planned("test", tmp_path / "venv") if "pip install" in line]
    assert installs == [f"{tmp_path / 'venv'}/bin/python -m pip install -e '.[test]'"]
