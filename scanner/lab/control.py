"""Client side of the node control sockets (one JSON line per request and reply)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any


def request(sock_path: str | Path, message: dict[str, Any], timeout: float = 3.0) -> dict[str, Any] | None:
    """Send one control message; None when the node does not answer."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(sock_path))
            s.sendall((json.dumps(message) + "\n").encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    try:
        reply = json.loads(data)
    except ValueError:
        return None
    return reply if isinstance(reply, dict) else None
