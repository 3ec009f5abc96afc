"""Telemetry's lifecycle: batch settings from the environment, one flush deadline, what
is built only when asked for, and the one error policy."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry

import kit_telemetry as kt
from kit_telemetry._errors import ErrorPolicy


class BatchRecorder(SpanExporter):
    """Records the size of every batch it is handed."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.batches.append(len(spans))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


class Hanging(SpanExporter):
    """An exporter whose exports never finish before it is released."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait(10)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


def _python(
    code: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (environment ``env``, else ours), never raising."""
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env if env is not None else dict(os.environ),
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _five_tool_calls(tel: kt.Telemetry) -> None:
    with tel.session("s") as session, session.run("go") as run:
        for i in range(5):
            with run.tool_call("bash", call_id=f"t{i}"):
                pass


def test_otel_bsp_variables_set_the_export_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_BSP_MAX_EXPORT_BATCH_SIZE applies as it does to the SDK's own processor."""
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2")
    recorder = BatchRecorder()
    tel = kt.configure(exporters=(recorder,), prometheus=CollectorRegistry())
    _five_tool_calls(tel)
    tel.shutdown()
    assert max(recorder.batches) == 2
    assert sum(recorder.batches) == 9  # 2 session spans, run, turn, 5 tools: none lost


def test_without_the_variables_a_flush_sends_one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", raising=False)
    recorder = BatchRecorder()
    tel = kt.configure(exporters=(recorder,), prometheus=CollectorRegistry())
    _five_tool_calls(tel)
    tel.shutdown()
    assert recorder.batches == [9]


def test_force_flush_shares_one_deadline_between_its_steps() -> None:
    """Two stuck exporters cost one timeout, not one each."""
    stuck = [Hanging(), Hanging()]
    tel = kt.configure(exporters=tuple(stuck), prometheus=CollectorRegistry())
    _five_tool_calls(tel)
    started = time.monotonic()
    flushed = tel.force_flush(timeout_millis=600)
    took = time.monotonic() - started
    for exporter in stuck:
        exporter.release.set()
    tel.shutdown()
    assert flushed is False
    assert took < 1.1  # two steps of 600 ms each would take 1.2 s at least


def test_no_metrics_are_recorded_when_nothing_could_read_them(tmp_path: Path) -> None:
    """Without an endpoint, a registry or a meter provider, prometheus-client stays unloaded."""
    code = (
        "import sys, kit_telemetry as kt\n"
        "tel = kt.configure(exporters=('none',))\n"
        "with tel.session('s') as s, s.run('go') as run:\n"
        "    with run.llm_call('openai', 'gpt-4o') as call:\n"
        "        call.record_usage(input_tokens=10, output_tokens=2)\n"
        "tel.shutdown()\n"
        "print(tel.metrics is None, 'prometheus_client' in sys.modules, run.end_event.input_tokens)\n"
    )
    done = _python(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False", "10"]


def test_a_registry_given_receives_the_metrics() -> None:
    registry = CollectorRegistry()
    tel = kt.configure(exporters=("none",), prometheus=registry)
    with tel.session("s") as session, session.run("go") as run:
        with run.llm_call("openai", "gpt-4o") as call:
            call.record_usage(input_tokens=10, output_tokens=2)
    tel.shutdown()
    labels = {"provider": "openai", "model": "gpt-4o", "outcome": "ok"}
    assert registry.get_sample_value("kit_llm_calls_total", labels) == 1


def test_bad_input_is_logged_once_per_field_and_counted_every_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counted: list[str] = []
    policy = ErrorPolicy(count=counted.append)
    with caplog.at_level(logging.DEBUG, logger="kit_telemetry"):
        for value in (-1, -2, -3):
            policy.bad_input("llm_call.max_tokens", f"max_tokens must be >= 0, got {value}")
        policy.bad_input("tool_call.name", "tool_call name must be a non-empty string, got ''")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "got -1" in warnings[0] and "tool_call name" in warnings[1]
    assert counted == ["api"] * 4


def test_strict_raises_bad_input_naming_it() -> None:
    policy = ErrorPolicy(strict=True)
    with pytest.raises(kt.UsageError, match="got -1"):
        policy.bad_input("llm_call.max_tokens", "max_tokens must be >= 0, got -1")


def test_a_failure_is_raised_when_strict_and_logged_once_per_kind_otherwise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counted: list[str] = []
    with pytest.raises(OSError):
        ErrorPolicy(strict=True, count=counted.append).failed("state", OSError("disk full"))
    lenient = ErrorPolicy(count=counted.append)
    with caplog.at_level(logging.ERROR, logger="kit_telemetry"):
        lenient.failed("state", OSError("disk full"))
        lenient.failed("state", OSError("disk still full"))
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1
    assert counted == ["state", "state", "state"]


def test_a_misspelt_option_is_a_config_error_naming_the_allowed_ones() -> None:
    with pytest.raises(kt.ConfigError, match=r"servce_name.*allowed: .*service_name"):
        kt.configure(servce_name="x")  # type: ignore[call-arg]


# --- standard OpenTelemetry settings, each in a process of its own ---------------------------
_REPORT = (
    "import json, sys, kit_telemetry as kt\n"
    "{configure}\n"
    "with tel.session('s') as session, session.run('go', agent_name='envtest') as run:\n"
    "    pass\n"
    "tel.shutdown()\n"
    "print(json.dumps({{'service': tel.service_name,\n"
    "    'resource': tel.tracer_provider.resource.attributes.get('service.name'),\n"
    "    'capture': tel.capture_content}}))\n"
)


def _configured(env: dict[str, str], configure: str, tmp_path: Path) -> dict[str, object]:
    """What ``configure`` made of the environment ``env``, in a fresh process."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = _python(_REPORT.format(configure=configure), tmp_path, {**environment, **env})
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    result["console"] = "envtest" in done.stderr  # the console exporter's run line
    return result


def test_otel_service_name_names_the_service_unless_given(tmp_path: Path) -> None:
    env = {"OTEL_SERVICE_NAME": "billing-agent"}
    from_env = _configured(env, "tel = kt.configure(exporters=('none',))", tmp_path)
    given = _configured(env, "tel = kt.configure(service_name='x', exporters=('none',))", tmp_path)
    default = _configured({}, "tel = kt.configure(exporters=('none',))", tmp_path)
    assert (from_env["service"], from_env["resource"]) == ("billing-agent", "billing-agent")
    assert given["resource"] == "x"
    assert default["resource"] == "kit-telemetry"


def test_otel_resource_attributes_name_the_service_too(tmp_path: Path) -> None:
    env = {"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs,team=ml"}
    assert (
        _configured(env, "tel = kt.configure(exporters=('none',))", tmp_path)["resource"]
        == "from-attrs"
    )


def test_otel_traces_exporter_chooses_the_default_exporters(tmp_path: Path) -> None:
    """``none`` exports nothing; unset, the console; given exporters win over the variable."""
    none = _configured({"OTEL_TRACES_EXPORTER": "none"}, "tel = kt.configure()", tmp_path)
    unset = _configured({}, "tel = kt.configure()", tmp_path)
    console = _configured(
        {"OTEL_TRACES_EXPORTER": "none"}, "tel = kt.configure(exporters=('console',))", tmp_path
    )
    assert (none["console"], unset["console"], console["console"]) == (False, True, True)


def test_an_unknown_otel_traces_exporter_is_a_config_error(tmp_path: Path) -> None:
    done = _python(
        "import kit_telemetry as kt; kt.configure()",
        tmp_path,
        {**os.environ, "OTEL_TRACES_EXPORTER": "zipkinn"},
    )
    assert done.returncode == 1
    assert "ConfigError: OTEL_TRACES_EXPORTER='zipkinn': zipkinn is not one of" in done.stderr


def test_genai_capture_content_variable_turns_content_on_unless_given(tmp_path: Path) -> None:
    env = {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}
    on = _configured(env, "tel = kt.configure(exporters=('none',))", tmp_path)
    off = _configured(
        env, "tel = kt.configure(exporters=('none',), capture_content=False)", tmp_path
    )
    unset = _configured({}, "tel = kt.configure(exporters=('none',))", tmp_path)
    assert (on["capture"], off["capture"], unset["capture"]) == (True, False, False)


def test_otel_sdk_disabled_records_nothing_but_budgets_still_hold(tmp_path: Path) -> None:
    """The documented choice: telemetry off, budgets on (they guard money, not telemetry)."""
    code = (
        "import kit_telemetry as kt\n"
        "from prometheus_client import CollectorRegistry\n"
        "registry = CollectorRegistry()\n"
        "tel = kt.configure(prometheus=registry, budgets=[kt.Budget(name='loop', scope='run',"
        " max_llm_calls=2)])\n"
        "refused = []\n"
        "with tel.session('s') as session:\n"
        "    for prompt in ('first', 'second'):\n"
        "        with session.run(prompt, agent_name='envtest') as run:\n"
        "            for _ in range(3):\n"
        "                try:\n"
        "                    with run.llm_call('openai', 'gpt-4o', max_tokens=10) as call:\n"
        "                        call.record_usage(input_tokens=5, output_tokens=1)\n"
        "                except kt.BudgetExceeded as exc:\n"
        "                    refused.append(exc.budget)\n"
        "tel.shutdown()\n"
        "print(refused, tel.metrics, registry.get_sample_value('kit_llm_calls_total',"
        " {'provider': 'openai', 'model': 'gpt-4o', 'outcome': 'ok'}))\n"
    )
    done = _python(code, tmp_path, {**os.environ, "OTEL_SDK_DISABLED": "true"})
    assert done.returncode == 0, done.stderr
    # The third call of each run is refused: each run counts on its own.
    assert done.stdout.split("\n")[0] == "['loop', 'loop'] None None"
    assert done.stderr.count("OTEL_SDK_DISABLED is set") == 1
    assert "envtest" not in done.stderr  # no console run line: nothing exported
