"""Serve Prometheus metrics from an agent and scrape them.

``configure(prometheus="HOST:PORT")`` starts a ``/metrics`` endpoint in the agent process;
port 0 picks a free port (use a fixed one, e.g. 9464, for a real Prometheus to scrape).
This script records a few LLM and tool calls, then reads the endpoint the way Prometheus
would and prints some of the series of the README's metric table.

    python examples/scrape_metrics.py
"""

from __future__ import annotations

import urllib.request

import kit_telemetry as kt

CALLS = [
    # provider, model, input, cache_read, output
    ("openai", "gpt-4o-mini", 1200, 0, 300),
    ("openai", "gpt-4o-mini", 900, 1024, 150),
    ("anthropic", "claude-sonnet-4-5", 2000, 4000, 500),
]

SHOWN = ("kit_llm_tokens_total", "kit_llm_cost_usd_total", "gen_ai_client_token_usage_count")


def do_some_work(tel: kt.Telemetry) -> None:
    with tel.session("metrics-demo") as session, session.run("summarise the logs") as run:
        for i, (provider, model, input_tokens, cache_read, output) in enumerate(CALLS):
            with run.llm_call(provider=provider, model=model, max_tokens=1024) as call:
                call.record_usage(
                    input_tokens=input_tokens,
                    cache_read_tokens=cache_read,
                    output_tokens=output,
                    response_id=f"resp-{i}",
                )
            with run.tool_call("grep") as tool:
                tool.set_result("42 matches")


def main() -> None:
    tel = kt.configure(service_name="metrics-example", exporters=(), prometheus="127.0.0.1:0")
    with tel:
        assert tel.metrics_server is not None
        url = tel.metrics_server.url
        print(f"serving metrics on {url}")
        do_some_work(tel)

        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode("utf-8")
        for line in text.splitlines():
            # Sample lines look like: name{label="value",...} 123.0
            if line.startswith(SHOWN):
                print(line)


if __name__ == "__main__":
    main()
