"""``Telemetry`` and ``configure()``: the entry point that wires everything together.

One ``Telemetry`` owns (or joins) a ``TracerProvider`` and adds, in order, the
``UsageAggregator``, the ``ExtensionSpanProcessor`` and the export processors; it records
metrics into its own Prometheus registry, prices calls, enforces budgets and keeps each
session's state. The instrumentation handles it hands out talk to one ``Runtime``
(``_runtime.py``), never to ``Telemetry`` itself.
"""

from __future__ import annotations

import atexit
import inspect
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TextIO, TypeVar

from opentelemetry import trace as trace_api
from opentelemetry.environment_variables import OTEL_TRACES_EXPORTER
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.environment_variables import OTEL_SDK_DISABLED
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

from . import instrumentation
from ._errors import ErrorPolicy
from ._runtime import Runtime
from ._version import __version__
from .aggregation import UsageAggregator
from .errors import ConfigError, ExtensionLoadError, UnknownCommandError
from .extensions.processor import ExtensionSpanProcessor
from .instrumentation import Session
from .messages import ContentHook
from .pricing import ModelPrice, PriceTable
from .state.registry import StateRegistry
from .state.store import Durability
from .validation.checks import check_required_text, check_usage
from .validation.options import check_option

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter
    from prometheus_client import CollectorRegistry

    from .budgets.config import BudgetConfig
    from .budgets.enforcer import BudgetStatus
    from .budgets.gate import BudgetGate, BudgetsOption
    from .exporters.prometheus import MetricsServer
    from .extensions.api import LoadedExtension
    from .instrumentation.providers import ProviderInstrumentor
    from .metrics import KitMetrics
    from .tools import ToolDefinition

logger = logging.getLogger("kit_telemetry")
_T = TypeVar("_T")

# The switch of the OpenTelemetry GenAI instrumentations for message content.
CAPTURE_MESSAGE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


class Telemetry:
    """Instrumentation, metrics, budgets and extensions for one agent process.

    Every argument is keyword-only (the README's configuration reference lists them). Bad
    configuration raises ``ConfigError`` here, at start-up, naming the field, the value and
    what is allowed.

    Args:
        service_name: the ``service.name`` resource attribute of the provider we create;
            default ``OTEL_SERVICE_NAME`` (or ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``),
            else "kit-telemetry".
        tracer_provider: add our processors to this provider instead of creating one.
        meter_provider: also record metrics through this OpenTelemetry meter provider (OTLP).
        exporters: span exporters: "console", "otlp-json:PATH", "otlp", "none" or
            ``SpanExporter`` objects. Default when we create the provider: those of
            ``OTEL_TRACES_EXPORTER`` (``otlp``, ``console``, ``none``), else ("console",);
            none when a provider is given (it has its own).
        prometheus: "HOST:PORT" starts a ``/metrics`` endpoint; a ``CollectorRegistry``
            receives the metrics. With neither this nor ``meter_provider`` (nor
            prometheus-client's multi-process folder) no metrics are recorded.
        budgets: a budgets TOML path, a list of ``Budget``, or a ``BudgetConfig`` (with alert sinks).
        extensions: extension modules ("pkg.mod") or file paths.
        extension_errors: "raise" (default) or "log" an extension that fails to load.
        fail_closed_extensions: extensions whose failing handlers block (or stop) at a
            decision point instead of having no opinion; loaded after ``extensions``
            unless listed there too.
        state_dir: where the state of sessions without a session file is kept.
        state_durability: "sync" (on disk when ``set_state`` returns) or "batched".
        prices: price overrides ({"model": ModelPrice}) or a TOML path.
        subscription_providers: providers billed by subscription (their calls cost 0).
        capture_content: put prompts, tool arguments and results on exported spans; default
            ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` (true or span_only...),
            else False. A callable ``(content, attribute) -> str | None`` captures through
            it: it returns the text to record, or None to leave that content out.
        legacy_names: also write the attribute names older backends read (``gen_ai.system``,
            ``gen_ai.usage.prompt_tokens``/``completion_tokens``, ``kit.user_input.text``,
            ``kit.run.response``); default ``KIT_TELEMETRY_LEGACY_NAMES``, else False.
        max_content_chars: content longer than this is truncated on spans.
        strict: raise internal errors and bad input instead of logging them (tests).
        install_global: make our tracer provider the global one.
        console_stream: where the console exporter writes (default stderr).
        handler_timeout_s: async extension handlers running longer are abandoned.
        max_series: free-form label combinations (model, tool, agent...) kept per metric;
            new ones go to the metric's overflow series (those labels "other"), counted.
        created_series: expose the ``_created`` samples of kit-telemetry's counters and
            histograms (off by default; other metrics of the registry are not affected).
    """

    def __init__(
        self,
        *,
        service_name: str | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        exporters: Iterable[str | SpanExporter] | None = None,
        prometheus: str | CollectorRegistry | None = None,
        budgets: BudgetsOption | None = None,
        extensions: Iterable[str | os.PathLike[str]] = (),
        extension_errors: Literal["raise", "log"] = "raise",
        fail_closed_extensions: Iterable[str | os.PathLike[str]] = (),
        state_dir: str | os.PathLike[str] | None = None,
        state_durability: Durability = "sync",
        prices: Mapping[str, ModelPrice] | str | os.PathLike[str] | None = None,
        subscription_providers: Iterable[str] = (),
        capture_content: bool | ContentHook | None = None,
        legacy_names: bool | None = None,
        max_content_chars: int = 4096,
        strict: bool = False,
        install_global: bool = False,
        console_stream: TextIO | None = None,
        handler_timeout_s: float = 5.0,
        max_series: int = 1000,
        created_series: bool = False,
        # No value type-checks here, so mypy reports a misspelt option; at run time it is
        # a ConfigError that lists the allowed ones.
        **unknown: NoReturn,
    ) -> None:
        if unknown:
            raise ConfigError(
                f"unknown configure() argument(s) {sorted(unknown)}; allowed: {', '.join(sorted(_OPTIONS))}"
            )
        check_option("configure.extension_errors", extension_errors)
        check_option("configure.state_durability", state_durability)
        if isinstance(tracer_provider, trace_api.ProxyTracerProvider) or (
            tracer_provider is not None and not isinstance(tracer_provider, TracerProvider)
        ):
            raise ConfigError(
                f"tracer_provider must be an opentelemetry.sdk.trace.TracerProvider, got {tracer_provider!r}"
            )
        check_option("configure.handler_timeout_s", handler_timeout_s)
        check_option("configure.max_content_chars", max_content_chars)
        check_option("configure.max_series", max_series)
        resource = _resource(service_name)
        self.service_name = str(resource.attributes[SERVICE_NAME])
        if capture_content is None:
            capture_content = _env_capture_content()
        self.capture_content = bool(capture_content)
        self.max_content_chars = max_content_chars
        self.strict = bool(strict)
        self._errors = ErrorPolicy(strict=self.strict)
        self._lock = threading.Lock()
        self._closed = False
        self._instrumentor: ProviderInstrumentor | None = None

        # Built in order; if any step fails, what was started is stopped again, so that a
        # bad configuration leaves no server, thread or open file behind.
        self.metrics_server: MetricsServer | None = None
        self._budgets: BudgetGate | None = None
        self._processors: list[SpanProcessor] = []
        self._owns_provider = False
        try:
            disabled = _sdk_disabled()
            if disabled:
                # The SDK's providers hand out tracers that record nothing: say it once,
                # and serve and export nothing either. Budgets are not telemetry: they hold.
                logger.warning(
                    "kit-telemetry: %s is set: no spans, events or metrics are recorded, "
                    "exported or served; budgets still apply",
                    OTEL_SDK_DISABLED,
                )
                prometheus, meter_provider, exporters = None, None, ()
            # Metrics first: everything else reports its errors through them.
            self.metrics = _metrics_for(
                prometheus, meter_provider, max_series, created_series, disabled=disabled
            )
            if self.metrics is not None:
                self._errors.count_with(self.metrics.record_internal_error)
            self.prices = PriceTable(prices, subscription_providers=subscription_providers)
            self._states = StateRegistry(
                state_dir=state_dir,
                durability=state_durability,
                on_error=lambda exc: self._errors.failed("state", exc),
                strict=self.strict,
                errors=self._errors,
            )
            self.aggregator = UsageAggregator(
                pricer=self.prices, metrics=self.metrics, on_error=self._errors.failed
            )
            self._extensions = ExtensionSpanProcessor(
                self.aggregator,
                state_provider=self._states.state_for,
                handler_timeout_s=handler_timeout_s,
                metrics=self.metrics,
                # Load failures the user chose to tolerate were logged where they happened.
                on_error=lambda component, exc: self._errors.count(component),
                strict=self.strict,
            )
            if budgets is not None:
                from .budgets.gate import BudgetGate, budget_config

                self._budgets = BudgetGate(
                    budget_config(budgets),
                    prices=self.prices,
                    metrics=self.metrics,
                    emit=self._extensions.emit,
                )
                self.aggregator.set_spend_sink(self._budgets.charge_llm_call)

            owns_provider = tracer_provider is None
            if tracer_provider is None:
                tracer_provider = TracerProvider(resource=resource)
            self.tracer_provider = tracer_provider
            self._owns_provider = owns_provider
            if exporters is None:
                exporters = _env_exporters() if owns_provider else ()
            else:
                # Only when exporters are given: the SDK's export module is not loaded at import.
                from opentelemetry.sdk.trace.export import SpanExporter

                if isinstance(exporters, (str, SpanExporter)):
                    exporters = (exporters,)  # one exporter given on its own
            self._processors = [self.aggregator, self._extensions]
            exporters = tuple(exporters)
            if exporters:
                from .exporters.pipeline import build_export_processors, build_span_exporters

                span_exporters = build_span_exporters(exporters, console_stream=console_stream)
                # Export runs on a background thread: never raised there, even when strict;
                # the guarded exporter has logged the failure once already.
                self._processors += build_export_processors(
                    span_exporters, on_error=lambda component, exc: self._errors.count(component)
                )
            self._runtime = Runtime(
                tracer=tracer_provider.get_tracer("kit_telemetry", __version__),
                errors=self._errors,
                prices=self.prices,
                aggregator=self.aggregator,
                states=self._states,
                budgets=self._budgets,
                capture_content=capture_content,
                max_content_chars=max_content_chars,
                legacy_names=legacy_names,
                extensions=self._extensions,
            )

            if isinstance(prometheus, str):
                from .exporters.prometheus import start_metrics_server

                assert self.metrics is not None  # a HOST:PORT always records
                self.metrics_server = start_metrics_server(
                    prometheus, registry=self.metrics.registry
                )

            listed = [os.fspath(e) for e in extensions]
            closed = [os.fspath(e) for e in fail_closed_extensions]
            for extension in [*listed, *(e for e in closed if e not in listed)]:
                self._extensions.load(
                    extension, errors=extension_errors, fail_closed=extension in closed
                )
            # Last, once nothing else can fail: a provider can never lose a processor again.
            for processor in self._processors:
                tracer_provider.add_span_processor(processor)
            if install_global:
                trace_api.set_tracer_provider(tracer_provider)
            # The bundled price data is read now (or built in the background), not in the
            # agent's first LLM call.
            self.prices.preload()
        except BaseException:
            self._abandon()
            raise

        # Flush and close at interpreter exit, unless shut down before; held weakly so an
        # unused Telemetry can still be garbage collected.
        atexit.register(_shutdown_at_exit, weakref.ref(self))

    @property
    def state_dir(self) -> os.PathLike[str] | None:
        """Where the state of sessions without a session file lives (None: in memory)."""
        return self._states.state_dir

    @property
    def budget_config(self) -> BudgetConfig | None:
        """The budgets and alert sinks in force (None: no budgets)."""
        return self._budgets.config if self._budgets is not None else None

    @property
    def extension_processor(self) -> ExtensionSpanProcessor:
        """The span processor that runs the extensions' handlers."""
        return self._extensions

    # --- instrumentation ---------------------------------------------------------------
    def session(
        self,
        session_id: str | None = None,
        *,
        session_file: str | os.PathLike[str] | None = None,
        user: str | None = None,
        subscription: bool = False,
        attributes: Mapping[str, str] | None = None,
    ) -> Session:
        """A session (use it with ``with``); a random id is made when none is given.

        Args:
            session_id: the conversation id, ``gen_ai.conversation.id`` on every span.
            session_file: the agent's session file; its state sidecar lives beside it.
            user: who the session is for (``user``-scoped budgets count per user).
            subscription: the session is billed by subscription: its calls cost 0.0.
            attributes: extra key/values for ``attribute:<key>`` budget scopes and ``match``.
        """
        return Session(
            self._runtime,
            session_id,
            session_file=session_file,
            user=user,
            subscription=subscription,
            attributes=attributes,
        )

    def instrument(self, *providers: str) -> None:
        """Patch the installed SDKs of ``providers`` ("openai", "anthropic"); idempotent.

        Their calls become LLM calls of the current run (or of an implicit run), admitted
        against the budgets before the request is sent. ``uninstrument()`` undoes it.

        Raises:
            ConfigError: an unknown provider, or its SDK is not installed.
        """
        from .instrumentation.providers import ProviderInstrumentor

        with self._lock:
            if self._instrumentor is None:
                self._instrumentor = ProviderInstrumentor(self._runtime)
        self._instrumentor.instrument(*providers)

    def uninstrument(self) -> None:
        """Restore the SDK methods ``instrument`` patched; a no-op when none are."""
        if self._instrumentor is not None:
            self._instrumentor.uninstrument()

    def wrap(self, fn: Callable[..., _T]) -> Callable[..., _T]:
        """Bind ``fn`` to the current session/run/turn, to call it from another thread."""
        return instrumentation.wrap(fn)

    def price(self, provider: str, model: str, usage: Mapping[str, int]) -> float | None:
        """The cost in USD of ``usage`` (record_usage's token keywords); None if unknown."""
        tokens = check_usage(self._errors, "price.usage", usage)
        if tokens is None:
            return None
        return self.prices.cost_usd(
            check_required_text(self._errors, "price.provider", provider),
            check_required_text(self._errors, "price.model", model),
            tokens,
        )

    def budget_status(self) -> list[BudgetStatus]:
        """Every budget and live scope key: limit, spent, reserved, remaining, window end."""
        if self._budgets is None:
            return []
        return self._budgets.status()

    # --- extensions ----------------------------------------------------------------------
    def load_extension(
        self, path_or_module: str | os.PathLike[str], *, fail_closed: bool = False
    ) -> LoadedExtension:
        """Load one extension (a file path or an importable module name).

        Args:
            fail_closed: a handler of it that raises or times out at a decision point
                blocks (or stops) instead of having no opinion.
        """
        return self._extensions.load(path_or_module, errors="raise", fail_closed=fail_closed)

    def reload_extension(self, name: str) -> LoadedExtension:
        """Re-run a loaded extension's ``setup`` from its (changed) file; state is kept.

        Raises:
            ExtensionLoadError: no extension of that name is loaded, or its setup failed.
        """
        if not isinstance(name, str):
            raise ExtensionLoadError(f"extension names are strings, got {name!r}")
        return self._extensions.reload(name)

    def tool_definitions(self) -> list[ToolDefinition]:
        """Every tool the extensions registered, in load order (see ``kt.tool_schemas``)."""
        return self._extensions.tool_definitions()

    @property
    def extensions(self) -> list[LoadedExtension]:
        """The loaded extensions, in load order."""
        return self._extensions.loaded()

    def run_command(self, name: str, args: str = "", session: Session | None = None) -> Any:
        """Run a command an extension registered; returns what its handler returned.

        Raises:
            UnknownCommandError: no extension registered ``name``.
            TypeError: ``args`` is not a string, or ``session`` is not a ``Session``.
        """
        if not isinstance(name, str):
            raise UnknownCommandError(f"command names are strings, got {name!r}")
        if not isinstance(args, str):
            raise TypeError(f"run_command args must be a string, got {args!r}")
        if session is not None and not isinstance(session, Session):
            raise TypeError(f"run_command session must be a Session or None, got {session!r}")
        return self._extensions.run_command(name, args, session=session)

    # --- lifecycle -------------------------------------------------------------------------
    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Deliver everything pending (state, alerts, async handlers, spans, metrics).

        Every step shares one deadline, ``timeout_millis`` from now; returns False when
        something was still pending at the deadline or failed.
        """
        deadline = time.monotonic() + timeout_millis / 1000

        def left_ms() -> int:
            return max(int((deadline - time.monotonic()) * 1000), 0)

        ok = True
        self._states.flush()
        if self._budgets is not None:
            ok = self._budgets.flush(left_ms() / 1000) and ok
        for processor in self._processors:
            ok = processor.force_flush(left_ms()) and ok
        return ok

    def shutdown(self) -> None:
        """Flush and release everything; safe to call more than once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self.uninstrument()
            self.force_flush(5000)
        finally:
            self._states.close()
            if self._budgets is not None:
                self._budgets.close()
            if self._owns_provider:
                self.tracer_provider.shutdown()  # shuts our processors down too
            else:
                for processor in self._processors:
                    processor.shutdown()
            if self.metrics_server is not None:
                self.metrics_server.shutdown()

    def _abandon(self) -> None:
        """Stop what a failed ``__init__`` had started (nothing else will)."""
        self._closed = True
        for close in (
            getattr(self.metrics_server, "shutdown", None),
            getattr(self._budgets, "close", None),
            *(processor.shutdown for processor in self._processors),
        ):
            if close is not None:
                try:
                    close()
                except Exception:
                    logger.debug("kit-telemetry: cleanup after a failed start", exc_info=True)

    def __enter__(self) -> Telemetry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()


def _shutdown_at_exit(ref: weakref.ref[Telemetry]) -> None:
    telemetry = ref()
    if telemetry is not None:
        telemetry.shutdown()


_OPTIONS = frozenset(
    name
    for name, parameter in inspect.signature(Telemetry.__init__).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY
)


def _resource(service_name: str | None) -> Resource:
    """The provider's resource: the name given, else the environment's, else ours.

    ``Resource.create`` reads ``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_SERVICE_NAME``, and
    lets attributes given to it win, as the OpenTelemetry SDK specifies.
    """
    resource = Resource.create({} if service_name is None else {SERVICE_NAME: service_name})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "kit-telemetry"}))
    return resource


# The exporters OTEL_TRACES_EXPORTER may name, as kit-telemetry's exporter specs.
_ENV_EXPORTERS = {"otlp": "otlp", "console": "console", "none": "none"}


def _env_exporters() -> tuple[str, ...]:
    """``OTEL_TRACES_EXPORTER`` as exporter specs; ("console",) when it is not set."""
    raw = os.environ.get(OTEL_TRACES_EXPORTER, "").strip()
    if not raw:
        return ("console",)
    names = [name.strip().lower() for name in raw.split(",") if name.strip()]
    unknown = sorted(set(names) - set(_ENV_EXPORTERS))
    if unknown:
        raise ConfigError(
            f"{OTEL_TRACES_EXPORTER}={raw!r}: {', '.join(unknown)} is not one of "
            f"{', '.join(_ENV_EXPORTERS)}"
        )
    specs = tuple(dict.fromkeys(_ENV_EXPORTERS[name] for name in names))
    return ("none",) if "none" in specs else specs


def _sdk_disabled() -> bool:
    """``OTEL_SDK_DISABLED=true``, read as the OpenTelemetry SDK reads it."""
    return os.environ.get(OTEL_SDK_DISABLED, "").strip().lower() == "true"


def _env_capture_content() -> bool:
    """Whether ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` asks for content on spans."""
    raw = os.environ.get(CAPTURE_MESSAGE_CONTENT, "").strip().lower()
    return raw in ("true", "1", "span_only", "span_and_event")


def _metrics_for(
    prometheus: str | CollectorRegistry | None,
    meter_provider: MeterProvider | None,
    max_series: int,
    created_series: bool,
    *,
    disabled: bool = False,
) -> KitMetrics | None:
    """The metrics recorder, or None when nothing could read the metrics.

    Metrics are recorded when they have somewhere to go: an endpoint to serve, a registry
    given, a meter provider, or prometheus-client's multi-process files. Otherwise neither
    the recording nor prometheus-client's import (a quarter of the start-up) is paid for.
    """
    if disabled:
        return None
    if isinstance(prometheus, str):
        registry = None
    elif prometheus is None:
        multiprocess = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get(
            "prometheus_multiproc_dir"  # noqa: SIM112 - the older name prometheus-client reads
        )
        if meter_provider is None and not multiprocess:
            return None
        registry = None
    else:
        from prometheus_client import CollectorRegistry

        if not isinstance(prometheus, CollectorRegistry):
            raise ConfigError(
                f"prometheus must be 'HOST:PORT', a CollectorRegistry or None, got {prometheus!r}"
            )
        registry = prometheus
    from prometheus_client import CollectorRegistry

    from .metrics import KitMetrics

    return KitMetrics(
        registry=registry or CollectorRegistry(auto_describe=True),
        meter_provider=meter_provider,
        max_series=max_series,
        created_series=created_series,
    )


configure = Telemetry
"""Create a ``Telemetry``: the usual way to start (the same, typed, keyword arguments)."""
