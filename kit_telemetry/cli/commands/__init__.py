"""Sub-commands of the ``kit-telemetry`` CLI; each module has ``register`` and ``run``."""
