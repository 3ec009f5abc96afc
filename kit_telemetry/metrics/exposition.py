"""``CatalogueCollector``: what a registry scrapes of the catalogue, ``_created`` series optional.

prometheus-client writes a ``_created`` sample (the Unix time the series was born) next to
every counter and histogram series. Prometheus 2.x does not store them unless told to
(``--enable-feature=created-timestamp-zero-ingestion``), and they double the sample lines
of every counter. prometheus-client's switch for them, ``disable_created_metrics()``, is
process-wide: it would also remove them from metrics the application registered itself.
So kit-telemetry's instruments are registered nowhere; this one collector stands for them
in the registry and leaves ``_created`` out of its own families only, unless asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client import Metric
from prometheus_client.registry import Collector

_WITH_CREATED = frozenset({"counter", "histogram", "summary"})


class CatalogueCollector(Collector):
    """Collects the catalogue's prometheus-client instruments for one registry.

    Args:
        instruments: the prometheus-client metrics (created with ``registry=None``).
        created_series: keep the ``_created`` samples of counters and histograms.
    """

    def __init__(self, instruments: Sequence[Collector], *, created_series: bool) -> None:
        self._instruments = tuple(instruments)
        self._created_series = created_series

    def describe(self) -> Iterable[Metric]:
        """The families without samples, so the registry knows (and guards) their names."""
        for instrument in self._instruments:
            yield from instrument.describe()  # type: ignore[attr-defined]

    def collect(self) -> Iterable[Metric]:
        """The instruments' families, without their ``_created`` samples unless kept."""
        for instrument in self._instruments:
            for family in instrument.collect():
                if self._created_series or family.type not in _WITH_CREATED:
                    yield family
                    continue
                created = family.name + "_created"
                trimmed = Metric(family.name, family.documentation, family.type, family.unit)
                trimmed.samples = [s for s in family.samples if s.name != created]
                yield trimmed
