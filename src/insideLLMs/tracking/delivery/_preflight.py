"""Is anyone listening? One TCP connect to a backend's server, before anything slow is done for it.

The evaluation's process runs these checks (delivery_process.py) to decide whether starting a
delivery process is worth it, and a delivery runs them before opening its sink: a refused
connection costs milliseconds, where finding out through the backend's client costs a timeout.
So this module imports nothing the evaluation has not imported already.
"""

from __future__ import annotations

import socket
import urllib.parse
from typing import Any

from insideLLMs.secrets import redact_text
from insideLLMs.tracking.sink import SinkError


def mlflow(options: dict[str, Any]) -> None:
    """Raise ``SinkError`` when nothing listens at an HTTP ``tracking_uri`` (connection refused,
    unknown host); other URIs are not checked. With ``preflight_timeout_s``, a server slower than
    that to accept is taken as "maybe up", not as down."""
    uri = str(options.get("tracking_uri") or "")
    if not uri.startswith(("http://", "https://")):
        return
    parts = urllib.parse.urlsplit(uri)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise SinkError(f"mlflow: bad tracking_uri {uri!r}", retryable=False) from None
    try:
        socket.create_connection((parts.hostname or "", port), timeout=options.get("preflight_timeout_s") or 3).close()
    except TimeoutError:
        if options.get("preflight_timeout_s"):
            return  # slow to answer is not "down": let the delivery find out
        raise SinkError(f"mlflow at {redact_text(uri)}: server unreachable (timed out)") from None
    except OSError as exc:
        raise SinkError(f"mlflow at {redact_text(uri)}: server unreachable ({exc.strerror or exc})") from None
