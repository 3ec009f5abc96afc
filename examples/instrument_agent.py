"""Instrument a hand-written agent loop with kit-telemetry.

The model is a tiny fake that answers in OpenAI's chat-completions shape, so the usage goes
through ``kt.usage.from_openai`` exactly as a real response would. The loop asks the model,
runs the tools it asks for (one of them fails), and stops on a final answer.

    python examples/instrument_agent.py [TRACES.jsonl]

Each finished run is printed by the console exporter (on stderr) and written as OTLP/JSON
lines to TRACES.jsonl (a temporary file when none is given); ``kit-telemetry report`` reads
that file.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import kit_telemetry as kt

MODEL = "gpt-4o-mini"

# What the fake model does on each turn: ask for tools, then answer.
SCRIPT: list[list[tuple[str, dict[str, str]]]] = [
    [("read_file", {"path": "tests/test_app.py"}), ("read_file", {"path": "missing.py"})],
    [("run_tests", {"target": "tests/"})],
    [],  # no tool calls: the final answer
]


def fake_model(messages: list[dict[str, Any]], turn: int) -> dict[str, Any]:
    """A chat completion as OpenAI returns it (``prompt_tokens`` includes cached tokens)."""
    prompt_tokens = 400 + 150 * len(messages)
    calls = SCRIPT[turn]
    message: dict[str, Any] = {"role": "assistant", "content": None}
    if calls:
        message["tool_calls"] = [
            {
                "id": f"call_{turn}_{i}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
            for i, (name, args) in enumerate(calls)
        ]
    else:
        message["content"] = "The test fails because add() ignores its second argument."
    return {
        "id": f"chatcmpl-{turn}",
        "model": MODEL,
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": 60 + 20 * turn,
            "total_tokens": prompt_tokens + 60 + 20 * turn,
            "prompt_tokens_details": {"cached_tokens": 256 if turn else 0},
            "completion_tokens_details": {"reasoning_tokens": 16},
        },
    }


def run_tool(name: str, args: dict[str, str]) -> str:
    if name == "read_file":
        if args["path"] == "missing.py":
            raise FileNotFoundError(args["path"])
        return "def test_add():\n    assert add(2, 3) == 5\n"
    return "1 failed, 3 passed"


def main(traces: Path) -> None:
    tel = kt.configure(service_name="example-agent", exporters=("console", f"otlp-json:{traces}"))
    with tel, tel.session("example-session") as session:
        prompt = "why does test_add fail?"
        with session.run(prompt, agent_name="coder") as run:
            messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
            for index in range(len(SCRIPT)):
                with run.turn() as turn:
                    with turn.llm_call(provider="openai", model=MODEL, max_tokens=1024) as call:
                        response = fake_model(messages, index)
                        call.record_usage(**kt.usage.from_openai(response))
                    message = response["choices"][0]["message"]
                    messages.append(message)
                    if not message.get("tool_calls"):
                        run.set_response(message["content"])
                        break
                    for tool_call in message["tool_calls"]:
                        name = tool_call["function"]["name"]
                        args = json.loads(tool_call["function"]["arguments"])
                        with turn.tool_call(name, call_id=tool_call["id"], arguments=args) as tool:
                            try:
                                result = run_tool(name, args)
                                tool.set_result(result)
                            except OSError as exc:
                                # A failed tool goes back to the model, so it is not raised.
                                result = f"error: {exc!r}"
                                tool.set_result(result, is_error=True)
                        messages.append(
                            {"role": "tool", "tool_call_id": tool_call["id"], "content": result}
                        )

    end = run.end_event
    assert end is not None
    print(f"run {end.agent_name!r} ended: stop_reason={end.stop_reason}")
    print(f"  turns={end.turn_count} llm_calls={end.llm_call_count}")
    print(f"  tool_calls={end.tool_call_count} tools={','.join(end.tool_names)}")
    print(
        f"  tokens: input={end.input_tokens} cache_read={end.cache_read_tokens} "
        f"output={end.output_tokens} reasoning={end.reasoning_tokens}"
    )
    print(f"  cost_usd={end.cost_usd:.6f} duration_ms={end.duration_ms:.1f}")
    print(f"  response={end.response!r}")
    print(f"traces written to {traces}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp) / "traces.jsonl")
