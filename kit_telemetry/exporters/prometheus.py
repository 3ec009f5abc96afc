"""The Prometheus ``/metrics`` endpoint: prometheus-client's own HTTP server on a thread.

``start_metrics_server("127.0.0.1:9464", registry=metrics.registry)`` serves the registry
in the Prometheus text format (and OpenMetrics or gzip when the scraper asks) until
``shutdown()``. Any path answers with the metrics; ``/metrics`` is the one to scrape.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from ..errors import ConfigError

logger = logging.getLogger("kit_telemetry")

DEFAULT_ADDRESS = "127.0.0.1:9464"
_FORM = '"HOST:PORT", "[IPv6]:PORT" or "PORT" (port 0 picks a free one)'


class MetricsServer:
    """A running ``/metrics`` endpoint.

    Attributes:
        host: the address it listens on.
        port: the port it listens on (the real one when 0 was asked for).
    """

    def __init__(self, server: WSGIServer, thread: threading.Thread, host: str) -> None:
        self._server = server
        self._thread = thread
        self._lock = threading.Lock()
        self._closed = False
        self.host = host
        self.port: int = server.server_address[1]

    @property
    def url(self) -> str:
        """The scrape URL, e.g. ``http://127.0.0.1:9464/metrics``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def shutdown(self) -> None:
        """Stop serving and release the port; later calls do nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        # serve_forever() looks at its stop flag only between 0.5 s polls; a connection
        # wakes the poll, so shutdown takes milliseconds instead of up to half a second.
        stopper = threading.Thread(target=self._server.shutdown, daemon=True)
        stopper.start()
        deadline = time.monotonic() + 5.0
        while stopper.is_alive() and time.monotonic() < deadline:
            self._wake()
            stopper.join(0.05)
        self._server.server_close()
        self._thread.join(timeout=5.0)

    def _wake(self) -> None:
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        try:
            with socket.create_connection((host, self.port), timeout=0.5):
                pass
        except OSError:
            pass  # already closed, or not reachable this way: the poll ends it anyway

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "serving"
        return f"<MetricsServer {self.url} {state}>"


def parse_address(address: str) -> tuple[str, int]:
    """Split ``"host:port"``, ``"[v6]:port"`` or ``"port"`` (host 127.0.0.1).

    Raises:
        ConfigError: the address is not one of those forms, or the port is out of range.
    """
    if not isinstance(address, str):
        raise ConfigError(f"prometheus: address {address!r} is not a string; expected {_FORM}")
    text = address.strip()
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep or not host:
            raise ConfigError(f"prometheus: address {address!r} is not one of {_FORM}")
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
        if not host or ":" in host:
            raise ConfigError(f"prometheus: address {address!r} is not one of {_FORM}")
    else:
        host, port_text = "127.0.0.1", text
    if not port_text.isascii() or not port_text.isdigit():
        raise ConfigError(
            f"prometheus: address {address!r} has port {port_text!r}, not a number; "
            f"expected {_FORM}"
        )
    port = int(port_text)
    if port > 65535:
        raise ConfigError(
            f"prometheus: address {address!r} has port {port}, not in 0..65535; expected {_FORM}"
        )
    return host, port


def start_metrics_server(
    address: str = DEFAULT_ADDRESS, *, registry: CollectorRegistry
) -> MetricsServer:
    """Serve ``registry`` on ``address`` from a daemon thread.

    Args:
        address: ``"HOST:PORT"``, ``"[IPv6]:PORT"`` or ``"PORT"`` (binds 127.0.0.1); port
            0 picks a free port (read it back from ``MetricsServer.port``).
        registry: what to serve, e.g. ``KitMetrics.registry`` (never the global one by
            default).

    Raises:
        ConfigError: the address is malformed, or it cannot be listened on (port taken,
            host not local).
    """
    host, port = parse_address(address)
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ConfigError(f"prometheus: cannot listen on {address!r}: {exc}") from exc
    metrics_server = MetricsServer(server, thread, host)
    logger.info("serving Prometheus metrics on %s", metrics_server.url)
    return metrics_server
