"""A loopback webhook receiver for the alert tests (a real HTTP server in a thread)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookReceiver(BaseHTTPRequestHandler):
    """Keeps each JSON body it answers 200 to; ``statuses`` are answered first, in order.

    A path starting ``/refuse`` is always answered 400.
    """

    bodies: list[dict[str, Any]]
    statuses: list[int]

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = json.loads(self.rfile.read(length))
        status = self.statuses.pop(0) if self.statuses else 200
        if self.path.startswith("/refuse"):
            status = 400
        if status == 200:
            self.bodies.append(body)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def webhook_receiver() -> Iterator[tuple[str, type[WebhookReceiver]]]:
    """``(url, handler class)``: POSTs to ``url`` land in ``handler.bodies``."""
    handler = type("Handler", (WebhookReceiver,), {"bodies": [], "statuses": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook?token=s3cret", handler
    finally:
        server.shutdown()
        server.server_close()
