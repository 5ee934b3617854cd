"""The running ``make dev`` stack's settings, for operator commands run beside it.

``approvals dev`` picks a database (its embedded PostgreSQL, on a socket in the data
directory) and writes it, with Temporal's address, into ``<data dir>/dev.env``. A
developer who then runs ``approvals token``, ``reconcile``, ``signal``, ``migrate``
or ``load-org`` in another terminal has none of that in their environment. So in
development, when ``DATABASE_URL`` is not set, these commands read the stack's
``dev.env`` (and say so on stderr); a variable the environment does set always wins.
Outside development nothing is read: production takes its settings from its
environment only.
"""

from __future__ import annotations

import logging
import shlex
from pathlib import Path
from typing import Any

from common.settings import Settings

log = logging.getLogger("approvals.cli")

ENV_FILE = "dev.env"

# What the stack decided and a command may need; the tokens in the file are not read.
STACK_VARIABLES = {
    "DATABASE_URL": "database_url",
    "TEMPORAL_ADDRESS": "temporal_address",
    "TEMPORAL_NAMESPACE": "temporal_namespace",
}


def read_env_file(path: Path) -> dict[str, str]:
    """The values of a shell file of ``export NAME=value`` lines, as ``dev.env`` is."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["export"]:
            words = words[1:]
        for word in words:
            name, sep, value = word.partition("=")
            if sep:
                values[name] = value
    return values


def with_dev_stack(settings: Settings) -> Settings:
    """``settings``, completed from the dev stack's ``dev.env`` when that applies.

    Applies in development, when no ``DATABASE_URL`` is set and the data directory
    (``APPROVALS_DATA_DIR``) holds a ``dev.env``. Only the variables the environment
    leaves unset are taken from the file.
    """
    if settings.environment != "development" or settings.database_url:
        return settings
    path = settings.data_dir / ENV_FILE
    if not path.is_file():
        return settings
    found = read_env_file(path)
    taken: dict[str, Any] = {
        name: found[name]
        for name, field in STACK_VARIABLES.items()
        if found.get(name) and field not in settings.model_fields_set
    }
    if "DATABASE_URL" not in taken:
        return settings
    log.info("DATABASE_URL is not set: using the dev stack's %s from %s", ", ".join(taken), path)
    # The environment is read again; the file's values fill only what it left unset.
    return Settings(**taken)
