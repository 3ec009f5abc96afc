"""An extension that reports usage and keeps a soft cost cap per session.

Load it with ``kt.configure(extensions=["examples/extensions/usage_budget.py"])`` or run it
in the demo::

    kit-telemetry demo --extension examples/extensions/usage_budget.py

What it does:

- after every LLM call, one line: model, tokens by kind, the call's cost and the session's
  spend so far;
- keeps that spend in the session's state, so it carries on where it was when an agent
  resumes a session from its file, and warns once when it goes over a soft cap
  (``KIT_SOFT_CAP_USD``, default $0.05). A soft cap only warns; ``kt.Budget`` stops calls;
- at the end of every run, a summary from the enriched ``AgentEndEvent``: turns, LLM
  calls, the tools called, tokens and cost;
- a ``budget`` command: ``tel.run_command("budget", session=session)`` returns the
  session's spend as kept in its state.

Everything it says goes through ``notify``: to the host's notifier, or by default to the
``kit_telemetry`` logger.
"""

from __future__ import annotations

import math
import os

import kit_telemetry as kt

SOFT_CAP_ENV = "KIT_SOFT_CAP_USD"
DEFAULT_SOFT_CAP_USD = 0.05

# Session state is shared by every extension of a session: prefix the keys.
SPENT_KEY = "usage_budget.spent_usd"
CALLS_KEY = "usage_budget.llm_calls"
UNPRICED_KEY = "usage_budget.unpriced_calls"
WARNED_KEY = "usage_budget.soft_cap_warned"


def soft_cap_usd() -> float:
    """The soft cap from ``KIT_SOFT_CAP_USD`` (USD), or the default.

    Raises:
        ValueError: the variable is set but is not a non-negative number (the extension then
            fails to load, at start-up, rather than watching the wrong cap).
    """
    raw = os.environ.get(SOFT_CAP_ENV, "").strip()
    if not raw:
        return DEFAULT_SOFT_CAP_USD
    try:
        value = float(raw.removeprefix("$"))
    except ValueError:
        raise ValueError(f"{SOFT_CAP_ENV}={raw!r} is not an amount in USD, e.g. 0.50") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{SOFT_CAP_ENV}={raw!r} must be a non-negative amount in USD")
    return value


def usage_line(event: kt.LLMUsageEvent, spent_usd: float) -> str:
    """``gpt-4o #2: in 1,200 cache 4,000/0 out 310 (reasoning 0) $0.00512 | session $0.0312``."""
    cost = "unpriced" if event.cost_usd is None else f"${event.cost_usd:.5f}"
    return (
        f"{event.model} #{event.step}: in {event.input_tokens:,} "
        f"cache {event.cache_read_tokens:,}/{event.cache_write_tokens:,} "
        f"out {event.output_tokens:,} (reasoning {event.reasoning_tokens:,}) {cost} "
        f"| session ${spent_usd:.4f}"
    )


def tool_summary(tool_names: tuple[str, ...]) -> str:
    """``bash x2, read_file`` in the order the tools were first called; ``no tools``."""
    counts: dict[str, int] = {}
    for name in tool_names:
        counts[name] = counts.get(name, 0) + 1
    if not counts:
        return "no tools"
    return ", ".join(name if n == 1 else f"{name} x{n}" for name, n in counts.items())


def run_summary(end: kt.AgentEndEvent) -> str:
    """One line per finished run, from the enriched end event."""
    unpriced = f" (+{end.unpriced_call_count} unpriced)" if end.unpriced_call_count else ""
    failed = f", error {end.error}" if end.error else ""
    return (
        f"run {end.agent_name} done ({end.stop_reason or 'no stop reason'}{failed}): "
        f"{end.turn_count} turns, {end.llm_call_count} LLM calls, "
        f"{end.tool_call_count} tool calls [{tool_summary(end.tool_names)}], "
        f"tokens in {end.input_tokens:,} cache {end.cache_read_tokens:,}/"
        f"{end.cache_write_tokens:,} out {end.output_tokens:,}, "
        f"${end.cost_usd:.5f}{unpriced} in {end.duration_ms / 1000:.2f} s"
    )


def setup(api: kt.ExtensionAPI) -> None:
    """Register the handlers and the ``budget`` command."""
    cap_usd = soft_cap_usd()

    def on_llm_usage(event: kt.LLMUsageEvent, ctx: kt.ExtensionContext) -> None:
        spent = float(ctx.get_state(SPENT_KEY, 0.0)) + (event.cost_usd or 0.0)
        ctx.set_state(SPENT_KEY, spent)
        ctx.set_state(CALLS_KEY, int(ctx.get_state(CALLS_KEY, 0)) + 1)
        if event.cost_usd is None:
            ctx.set_state(UNPRICED_KEY, int(ctx.get_state(UNPRICED_KEY, 0)) + 1)
        ctx.notify(usage_line(event, spent))
        if spent > cap_usd and not ctx.get_state(WARNED_KEY, False):
            ctx.set_state(WARNED_KEY, True)
            ctx.notify(
                f"session {ctx.session_id} has spent ${spent:.4f}, over its soft cap of "
                f"${cap_usd:.2f} ({SOFT_CAP_ENV})",
                type="warning",
            )

    def on_agent_end(event: kt.AgentEndEvent, ctx: kt.ExtensionContext) -> None:
        ctx.notify(run_summary(event), type="error" if event.error else "info")

    api.on(kt.EventType.LLM_USAGE, on_llm_usage)
    api.on(kt.EventType.AGENT_END, on_agent_end)

    def budget(ctx: kt.ExtensionContext, args: str) -> str:
        spent = float(ctx.get_state(SPENT_KEY, 0.0))
        calls = int(ctx.get_state(CALLS_KEY, 0))
        unpriced = int(ctx.get_state(UNPRICED_KEY, 0))
        over = "over" if spent > cap_usd else "under"
        note = f", {unpriced} unpriced" if unpriced else ""
        return (
            f"session {ctx.session_id}: ${spent:.4f} over {calls} LLM calls{note}; "
            f"{over} the soft cap of ${cap_usd:.2f}"
        )

    api.register_command(
        kt.CommandDefinition(
            name="budget",
            description="the session's spend so far, against the soft cap",
            handler=budget,
        )
    )
