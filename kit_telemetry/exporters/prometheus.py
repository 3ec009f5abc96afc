"""The Prometheus ``/metrics`` endpoint: prometheus-client's own HTTP server, started by address.

``start_metrics_server("127.0.0.1:9464", registry=metrics.registry)`` serves the registry
with prometheus-client's ``start_http_server`` until ``shutdown()``. What a scraper gets is
prometheus-client's: any path answers with the metrics (``/metrics`` is the one to scrape),
``?name[]=...`` restricts the answer to those names, the format follows the ``Accept``
header (OpenMetrics when asked for, else the Prometheus text format 0.0.4), and the body is
gzip-compressed when the scraper accepts it. This module adds the address forms, their
``ConfigError``s, and a handle that stops the server and releases its port.
"""

from __future__ import annotations

import logging
import threading
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
        """Stop serving and release the port; later calls do nothing.

        Returns within prometheus-client's poll interval (half a second).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)

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
    """Serve ``registry`` on ``address`` from a daemon thread (prometheus-client's server).

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
