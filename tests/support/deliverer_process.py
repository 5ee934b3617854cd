"""A deliverer in a process of its own, for tests that kill it with SIGKILL:
``python -m tests.support.deliverer_process DATABASE_URL SMTP_PORT``.

Its mail goes to the test's SMTP server with a long time limit, so a slow server keeps
its batch in flight until the test kills it."""

from __future__ import annotations

import asyncio
import logging
import sys

from db.engine import make_engine, make_sessionmaker
from tests.support.notify import make_notifier
from worker.deliverer import Deliverer


async def main(url: str, smtp_port: int) -> None:
    engine = make_engine(url)
    notifier = make_notifier(smtp_port, smtp_timeout=120.0)
    await Deliverer(make_sessionmaker(engine), notifier, url).run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
