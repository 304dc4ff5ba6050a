"""A local webhook sink: an `http.server` on 127.0.0.1 that records every request it receives.

The oracle for the notifications is Slack's documented incoming-webhook shape
(https://api.slack.com/messaging/webhooks, https://api.slack.com/reference/block-kit/blocks):
a JSON POST whose `text` is a non-empty string (the notification fallback) and whose optional
`blocks` are Block Kit blocks; a `section` block has a `text` object and/or up to 10 `fields`,
each a `mrkdwn`/`plain_text` text object of at most 2000 (field) or 3000 (text) characters.
`slack_shape_problems` checks exactly that.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    method: str
    path: str
    content_type: str
    body: bytes

    def json(self) -> dict[str, Any]:
        value = json.loads(self.body)
        assert isinstance(value, dict)
        return value


@dataclass
class Sink:
    url: str
    requests: list[Received] = field(default_factory=list)
    status: int = 200

    def payloads(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.requests]


@contextmanager
def webhook_sink(status: int = 200, host: str = "127.0.0.1") -> Iterator[Sink]:
    """A sink answering `status` (Slack answers 200 `ok`); its URL carries a secret-like path.
    `host`: the address it listens on (the real nodes' pods reach the bridge's host address)."""
    sink = Sink(url="")
    sink.status = status

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            sink.requests.append(
                Received(
                    "POST",
                    self.path,
                    self.headers.get("Content-Type", ""),
                    self.rfile.read(length),
                )
            )
            self.send_response(sink.status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    sink.url = f"http://{host!s}:{port}/services/T0SECRET/B0SECRET/sentinel-webhook-token-5d1e"
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()


#: the sockets behind unreachable_url(), bound for the life of the test process
_HELD: list[socket.socket] = []


def unreachable_url() -> str:
    """A 127.0.0.1 URL nothing listens on: its port stays bound without a listen() for the
    life of the test process, so the kernel refuses every connection to it and no other
    process can take the port meanwhile (a port released at once was taken by a concurrent
    run once, and the notification failed otherwise than refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    _HELD.append(sock)
    port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/services/T0SECRET/B0SECRET/sentinel-webhook-token-5d1e"


def slack_shape_problems(payload: dict[str, Any]) -> list[str]:
    """What in `payload` Slack's incoming webhook would not take (empty when it fits)."""
    problems: list[str] = []
    text = payload.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append("`text` must be a non-empty string (the notification fallback)")
    blocks = payload.get("blocks", [])
    if not isinstance(blocks, list) or len(blocks) > 50:
        return [*problems, "`blocks` must be a list of at most 50 blocks"]
    for i, block in enumerate(blocks):
        if block.get("type") != "section":
            problems.append(f"block {i}: only section blocks are expected here")
            continue
        if "text" not in block and "fields" not in block:
            problems.append(f"block {i}: a section needs `text` or `fields`")
        texts = [(block["text"], 3000)] if "text" in block else []
        fields = block.get("fields", [])
        if len(fields) > 10:
            problems.append(f"block {i}: more than 10 fields")
        texts += [(f, 2000) for f in fields]
        for obj, limit in texts:
            if obj.get("type") not in ("mrkdwn", "plain_text"):
                problems.append(f"block {i}: text object type {obj.get('type')!r}")
            body = obj.get("text")
            if not isinstance(body, str) or not body or len(body) > limit:
                problems.append(f"block {i}: text must be 1..{limit} characters")
    return problems


def payload_text(payload: dict[str, Any]) -> str:
    """Everything a reader sees: the fallback text and every block's text."""
    parts = [str(payload.get("text", ""))]
    for block in payload.get("blocks", []):
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [f["text"] for f in block.get("fields", [])]
    return "\n".join(parts)
