"""Exporters: where kit-telemetry's spans and metrics go (console, OTLP-JSON file, OTLP,
the Prometheus endpoint). One module per mechanism; import the one you need."""
