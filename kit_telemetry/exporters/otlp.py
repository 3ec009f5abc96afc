"""The OTLP/HTTP exporter, from the optional ``kit-telemetry[otlp]`` extra.

``otlp_exporter()`` builds OpenTelemetry's own ``OTLPSpanExporter`` (protobuf over HTTP),
which reads the standard environment variables itself: ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ``..._HEADERS``, ``..._TIMEOUT``, ``..._COMPRESSION``
and the certificate variables. Keyword arguments override them.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace.export import SpanExporter

from kit_telemetry.errors import ConfigError

__all__ = ["INSTALL_HINT", "otlp_exporter"]

INSTALL_HINT = "pip install 'kit-telemetry[otlp]'"


def otlp_exporter(**kwargs: Any) -> SpanExporter:
    """Build an OTLP/HTTP span exporter.

    Args:
        **kwargs: passed to ``OTLPSpanExporter`` (``endpoint``, ``headers``, ``timeout``,
            ``compression``, ``certificate_file``, ``session`` ...); anything left out comes
            from the ``OTEL_EXPORTER_OTLP_*`` environment variables or their defaults
            (``http://localhost:4318/v1/traces``).

    Returns:
        The exporter.

    Raises:
        ConfigError: ``opentelemetry-exporter-otlp-proto-http`` is not installed; the message
            says how to install it.
    """
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        # The exporter was asked for by configuration (exporters=("otlp",)), so a missing
        # extra is a configuration problem, reported with the fix.
        raise ConfigError(
            "exporter 'otlp' needs the package opentelemetry-exporter-otlp-proto-http, "
            f"which is not installed ({exc}); install it with: {INSTALL_HINT}"
        ) from exc
    exporter: SpanExporter = OTLPSpanExporter(**kwargs)
    return exporter
