"""A web server on 127.0.0.1 that records every POST, for the chaos drill's webhook
subscriber and the channel tests (tests/support/receivers.py hands it on).

Under bench/, which the app never imports (pyproject.toml, the import-linter contracts)
and which is not packaged: a receiver for drills and tests, not part of the service.
The standard library's server, in a thread, answering as its user tells it (status,
body, a delay to play a hanging receiver).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """A web server that records every POST and answers ``status``/``answer`` after ``delay``."""

    url: str = ""
    hits: list[Hit] = field(default_factory=list)
    status: int = 200
    answer: dict[str, Any] = field(default_factory=lambda: {"errcode": 0, "errmsg": "ok"})
    delay: float = 0.0
    most_at_once: int = 0
    """The most POSTs it was answering at the same time."""
    _at_once: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _enter(self) -> None:
        with self._lock:
            self._at_once += 1
            self.most_at_once = max(self.most_at_once, self._at_once)

    def _leave(self) -> None:
        with self._lock:
            self._at_once -= 1

    def count(self, header: str) -> Counter[str]:
        """How many POSTs came with each value of ``header`` (``webhook-id``, say)."""
        return Counter(hit.headers.get(header, "") for hit in list(self.hits))


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    recv = HttpReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            recv.hits.append(Hit(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            recv._enter()
            try:
                if recv.delay:
                    time.sleep(recv.delay)
            finally:
                recv._leave()
            data = json.dumps(recv.answer).encode()
            try:
                self.send_response(recv.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up (the hanging-receiver tests)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    recv.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recv
    finally:
        server.shutdown()
        server.server_close()


__all__ = ["Hit", "HttpReceiver", "http_receiver"]
