"""A real local webhook receiver for the alert tests: an HTTP server on 127.0.0.1.

In-process (unit tests): ``Receiver(statuses=[503, 503, 200])`` answers each POST with the next
status (the last one repeats), records every body, and can hold requests until released.

As a process (lab tests, started inside the lab's inspector namespace through ``lab exec``)::

    python tests/sweep/receiver.py PORT OUT.jsonl READY_FILE

appends every JSON body it receives as one line to OUT.jsonl and answers 200.
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        receiver = self.server
        receiver.hold.wait(30)
        with receiver.lock:
            receiver.bodies.append(body)
            receiver.headers.append(dict(self.headers))
            index = min(len(receiver.bodies), len(receiver.statuses)) - 1
            status = receiver.statuses[index]
        if receiver.out is not None:
            with receiver.out.open("a") as fh:
                fh.write(json.dumps(json.loads(body)) + "\n")
        self.send_response(status)
        if status in (429, 503) and receiver.retry_after is not None:
            self.send_header("Retry-After", str(receiver.retry_after))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        return


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, statuses: list[int] | None = None, *, out: Path | None = None, port: int = 0,
                 retry_after: int | None = None) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.statuses = statuses or [200]
        self.out = out
        self.retry_after = retry_after
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self.hold = threading.Event()
        self.hold.set()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def messages(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(b) for b in self.bodies]

    def __enter__(self) -> Receiver:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.hold.set()
        self.shutdown()
        self.server_close()


def main(argv: list[str]) -> None:
    port, out, ready = int(argv[1]), Path(argv[2]), Path(argv[3])
    with Receiver(out=out, port=port) as receiver:
        ready.write_text(receiver.url)
        threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv)
