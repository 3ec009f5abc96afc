"""``python -m kit_telemetry`` runs the CLI."""

from kit_telemetry.cli import entry_point

entry_point()
