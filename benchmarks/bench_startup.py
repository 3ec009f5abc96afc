"""Start-up cost: import time, resident memory after the first run, the first call's span.

Run: ``.venv/bin/python benchmarks/bench_startup.py [--rounds 7] [--import-only]``

Every figure is taken in a fresh interpreter (``sys.executable``), ``--rounds`` times, and
the median is printed next to a baseline measured in the same run:

a. ``import kit_telemetry`` against ``import opentelemetry.sdk.trace`` alone, timed inside
   the child around the import statement (interpreter start-up left out), both from
   bytecode as an installed wheel has it (the package is compiled first: a child alone
   would not write it under ``PYTHONDONTWRITEBYTECODE``); then the import and
   ``configure(exporters=("none",))`` together, which is what an agent pays before its
   first span;
b. resident memory (``VmRSS`` of /proc/self/status, else ``ru_maxrss``) after
   ``configure(exporters=("none",))`` and one agent run with one priced LLM call, against
   the raw OpenTelemetry SDK making the same two spans; the price data loaded in the
   background is waited for (up to 2 s) so that it is counted;
c. the first LLM call's span, made right after ``configure()``, when the model call itself
   is a fixed 20 ms sleep: its duration minus 20 ms (the second call's, for reference).
   The spans are read from an ``InMemorySpanExporter`` on a provider passed to configure.
   With ``--cold``, the same with an empty price cache (``KIT_TELEMETRY_CACHE_DIR``): the
   first call then waits for the cache to be built, once per machine and genai-prices
   version.

Not a test: timings vary by machine (2 shared cores here).
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile

MIB = 1024 * 1024

_RSS = """
import resource
def rss_mib():
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

IMPORT_KIT = """
import time
t = time.perf_counter()
import kit_telemetry
print((time.perf_counter() - t) * 1e3)
"""

IMPORT_CONFIGURE = """
import time
t = time.perf_counter()
import kit_telemetry
kit_telemetry.configure(service_name="bench-startup", exporters=("none",))
print((time.perf_counter() - t) * 1e3)
"""

IMPORT_OTEL = """
import time
t = time.perf_counter()
import opentelemetry.sdk.trace
print((time.perf_counter() - t) * 1e3)
"""

RSS_KIT = (
    _RSS
    + """
import threading, time
import kit_telemetry as kt
tel = kt.configure(service_name="bench-startup", exporters=("none",))
with tel.session("s") as session:
    with session.run("task") as run:
        with run.llm_call("anthropic", "claude-sonnet-4-5") as call:
            call.record_usage(input_tokens=400, output_tokens=120, cache_read_tokens=2000)
        run.set_response("done")
cost = tel.price("anthropic", "claude-sonnet-4-5", {"input_tokens": 400, "output_tokens": 120})
assert cost and cost > 0, cost
deadline = time.monotonic() + 2.0
for thread in threading.enumerate():
    if thread.name.startswith("kit-telemetry-prices"):
        thread.join(max(deadline - time.monotonic(), 0.0))
print(rss_mib())
"""
)

RSS_OTEL = (
    _RSS
    + """
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
provider = TracerProvider(resource=Resource.create({"service.name": "bench-startup"}))
tracer = provider.get_tracer("raw")
with tracer.start_as_current_span("invoke_agent agent") as run:
    run.set_attribute("gen_ai.operation.name", "invoke_agent")
    run.set_attribute("gen_ai.conversation.id", "s")
    with tracer.start_as_current_span("chat claude-sonnet-4-5") as call:
        call.set_attribute("gen_ai.operation.name", "chat")
        call.set_attribute("gen_ai.provider.name", "anthropic")
        call.set_attribute("gen_ai.request.model", "claude-sonnet-4-5")
        call.set_attribute("gen_ai.usage.input_tokens", 2400)
        call.set_attribute("gen_ai.usage.output_tokens", 120)
provider.shutdown()
print(rss_mib())
"""
)

FIRST_CALL = """
import json, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import kit_telemetry as kt
spans = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(spans))
tel = kt.configure(service_name="bench-startup", tracer_provider=provider, exporters=())
with tel.session("s") as session:
    with session.run("task") as run:
        for _ in range(2):
            with run.llm_call("anthropic", "claude-sonnet-4-5") as call:
                time.sleep(0.020)
                call.record_usage(input_tokens=400, output_tokens=120)
chats = sorted(
    (s for s in spans.get_finished_spans() if s.name.startswith("chat")),
    key=lambda s: s.start_time,
)
print(json.dumps([(s.end_time - s.start_time) / 1e6 - 20.0 for s in chats]))
"""


def child(code: str, env: dict[str, str] | None = None) -> str:
    """Run ``code`` in a fresh interpreter and return its last line of output."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=env,
    )
    return result.stdout.strip().splitlines()[-1]


def compile_package() -> None:
    """Write the package's bytecode, as installing a wheel does.

    Importing it once in a child would not when ``PYTHONDONTWRITEBYTECODE`` is set: every
    timed child would then compile the package from source, against an OpenTelemetry SDK
    read from the bytecode its installer wrote.
    """
    spec = importlib.util.find_spec("kit_telemetry")
    assert spec is not None and spec.origin is not None
    compileall.compile_dir(os.path.dirname(spec.origin), quiet=1)


def medians(code: str, rounds: int) -> float:
    """Median over ``rounds`` fresh interpreters of the number ``code`` prints."""
    return statistics.median(float(child(code)) for _ in range(rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--cold", action="store_true", help="also (c) with an empty price cache in each round"
    )
    parser.add_argument("--import-only", action="store_true", help="only (a), the import time")
    args = parser.parse_args()
    rounds = args.rounds
    compile_package()
    child(IMPORT_CONFIGURE)  # the first run also fills the price cache, if it is empty

    # Interleaved, so that both sides see the same machine load.
    kit_ms, otel_ms, configure_ms = [], [], []
    for _ in range(rounds):
        kit_ms.append(float(child(IMPORT_KIT)))
        otel_ms.append(float(child(IMPORT_OTEL)))
        configure_ms.append(float(child(IMPORT_CONFIGURE)))
    kit, otel = statistics.median(kit_ms), statistics.median(otel_ms)
    configured = statistics.median(configure_ms)
    print(f"(a) import kit_telemetry        {kit:8.1f} ms")
    print(f"    import opentelemetry.sdk    {otel:8.1f} ms   ratio {kit / otel:5.2f}x")
    print(f"    import + configure()        {configured:8.1f} ms   ratio {configured / otel:5.2f}x")
    if args.import_only:
        return

    kit_rss, otel_rss = [], []
    for _ in range(rounds):
        kit_rss.append(float(child(RSS_KIT)))
        otel_rss.append(float(child(RSS_OTEL)))
    kit_mib, otel_mib = statistics.median(kit_rss), statistics.median(otel_rss)
    print(f"(b) RSS configure + first run   {kit_mib:8.1f} MiB")
    print(
        f"    RSS raw OpenTelemetry       {otel_mib:8.1f} MiB   difference {kit_mib - otel_mib:+.1f} MiB"
    )

    firsts, seconds = [], []
    for _ in range(rounds):
        first, second = json.loads(child(FIRST_CALL))
        firsts.append(first)
        seconds.append(second)
    print(f"(c) first call span - 20 ms     {statistics.median(firsts):8.3f} ms"
          f"   (max {max(firsts):.3f})")  # fmt: skip
    print(f"    second call span - 20 ms    {statistics.median(seconds):8.3f} ms")

    if args.cold:
        colds = []
        for _ in range(rounds):
            with tempfile.TemporaryDirectory() as directory:
                env = {**os.environ, "KIT_TELEMETRY_CACHE_DIR": directory}
                colds.append(json.loads(child(FIRST_CALL, env))[0])
        print(f"    first call, cold price cache {statistics.median(colds):8.3f} ms"
              "   (once per machine and genai-prices version)")  # fmt: skip


if __name__ == "__main__":
    main()
