"""The Prometheus ``/metrics`` endpoint: a small WSGI server on a daemon thread.

``start_metrics_server("127.0.0.1:9464", registry=metrics.registry)`` serves the registry
until ``shutdown()``. Any path answers with the metrics; ``/metrics`` is the one to scrape;
``?name[]=...`` restricts the answer to those metric names, as prometheus-client does.

The body is always the Prometheus text format (0.0.4), rendered by prometheus-client's
``generate_latest``, and gzip-compressed (at the fastest level) when the scraper accepts
it. Prometheus asks for OpenMetrics first but takes the text format just as well; with
prometheus-client 0.26 the OpenMetrics rendering and its maximum-level gzip take about
60 % longer on a large registry (10,000 series: ~145-160 ms against ~90 ms), and the
text format carries the same samples.
"""

from __future__ import annotations

import gzip
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, ThreadingWSGIServer

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
        self._server.shutdown()  # returns within one poll interval (50 ms)
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
    address: str = DEFAULT_ADDRESS,
    *,
    registry: CollectorRegistry,
    before_scrape: Callable[[], object] | None = None,
) -> MetricsServer:
    """Serve ``registry`` on ``address`` from a daemon thread.

    Args:
        address: ``"HOST:PORT"``, ``"[IPv6]:PORT"`` or ``"PORT"`` (binds 127.0.0.1); port
            0 picks a free port (read it back from ``MetricsServer.port``).
        registry: what to serve, e.g. ``KitMetrics.registry`` (never the global one by
            default).
        before_scrape: called before each answer, e.g. ``KitMetrics.force_flush``, so
            that a scrape restricted with ``name[]`` sees queued records too.

    Raises:
        ConfigError: the address is malformed, or it cannot be listened on (port taken,
            host not local).
    """
    host, port = parse_address(address)
    server_class = _ThreadingWSGIServerV6 if ":" in host else ThreadingWSGIServer
    try:
        server = make_server(
            host,
            port,
            metrics_app(registry, before_scrape),
            server_class=server_class,
            handler_class=_QuietHandler,
        )
    except OSError as exc:
        raise ConfigError(f"prometheus: cannot listen on {address!r}: {exc}") from exc
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="kit-telemetry-metrics",
        daemon=True,
    )
    thread.start()
    metrics_server = MetricsServer(server, thread, host)
    logger.info("serving Prometheus metrics on %s", metrics_server.url)
    return metrics_server


StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def metrics_app(
    registry: CollectorRegistry, before_scrape: Callable[[], object] | None = None
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """A WSGI app answering every GET with ``registry`` in the Prometheus text format."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD")])
            return [b""]
        if before_scrape is not None:
            before_scrape()
        names = parse_qs(environ.get("QUERY_STRING", "")).get("name[]")
        target = registry.restricted_registry(names) if names else registry
        body = generate_latest(target)
        headers = [("Content-Type", CONTENT_TYPE_PLAIN_0_0_4)]
        if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
            body = gzip.compress(body, compresslevel=1)
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(len(body))))
        start_response("200 OK", headers)
        return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else body]

    return app


class _ThreadingWSGIServerV6(ThreadingWSGIServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """Scrapes every few seconds would fill stderr with access lines."""

    def log_message(self, format: str, *args: Any) -> None:
        pass
