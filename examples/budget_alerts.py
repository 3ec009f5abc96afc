"""Budgets with warnings, a hard stop and a webhook alert sink.

Two budgets guard the agent: a USD budget per session that warns at 50% and 80% and then
refuses calls, and a run budget that stops a run looping for more than 5 LLM calls. Alerts
are posted as JSON to a webhook; here that is a tiny HTTP server this script starts on
127.0.0.1 and that prints what it receives.

    python examples/budget_alerts.py

The same configuration in TOML (``configure(budgets="budgets.toml")``)::

    [[budget]]
    name = "per-session"
    scope = "session"
    limit_usd = 0.10
    warn_at = [0.5, 0.8]
    action = "raise"

    [[budget]]
    name = "tool-loop"
    scope = "run"
    max_llm_calls = 5
    action = "raise"

    [[alert]]
    kind = "webhook"
    url = "http://127.0.0.1:9000/hook"
    events = ["warning", "exceeded"]
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import kit_telemetry as kt

MODEL = "gpt-4o"  # $2.50 in, $10 out per million tokens: each call here costs $0.008
received: list[dict[str, Any]] = []
_output = threading.Lock()


def say(line: str) -> None:
    """Print one whole line: the webhook's thread and the agent's print concurrently."""
    with _output:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class AlertReceiver(BaseHTTPRequestHandler):
    """Stands in for Slack, PagerDuty or your own service."""

    def do_POST(self) -> None:
        alert = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        received.append(alert)
        threshold = "" if alert["threshold"] is None else f" at {alert['threshold']:.0%}"
        say(
            f"webhook got: {alert['kind']}{threshold} budget={alert['budget']} "
            f"scope={alert['scope_key']} spent={alert['spent']:.4g} limit={alert['limit']:g}"
        )
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # keep the output readable
        pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), AlertReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{server.server_address[1]}/hook"
    say(f"webhook listening on {hook}")

    budgets = kt.BudgetConfig(
        budgets=(
            kt.Budget(name="per-session", scope="session", limit_usd=0.10, warn_at=(0.5, 0.8)),
            kt.Budget(name="tool-loop", scope="run", max_llm_calls=5),
        ),
        alerts=(kt.AlertSinkConfig(kind="webhook", url=hook, events=("warning", "exceeded")),),
    )
    tel = kt.configure(service_name="budget-example", exporters=(), budgets=budgets)

    with tel, tel.session("budget-demo") as session:
        for run_number in itertools.count(1):
            try:
                with session.run("keep going", agent_name="looper") as run:
                    while True:  # a runaway agent: only a budget stops it
                        with run.llm_call(provider="openai", model=MODEL, max_tokens=500) as call:
                            call.record_usage(input_tokens=2000, output_tokens=300)
            except kt.BudgetExceeded as exc:
                stop_reason = run.end_event.stop_reason if run.end_event else None
                say(
                    f"run {run_number} stopped ({stop_reason}): "
                    f"budget={exc.budget} limit={exc.limit:g} {exc.unit} spent={exc.spent:.4g}"
                )
                if exc.budget == "per-session":
                    break
        tel.force_flush()  # wait for the webhook deliveries in flight

        kinds = [a["kind"] for a in received if a["budget"] == "per-session"]
        say(f"per-session alerts received: {', '.join(kinds)}")
        for status in tel.budget_status():
            say(
                f"status: {status.name} ({status.scope_key}) spent {status.spent:.4g} "
                f"of {status.limit:g} {status.unit}, remaining {status.remaining:.4g}"
            )
    server.shutdown()


if __name__ == "__main__":
    main()
