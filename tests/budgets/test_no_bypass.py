"""Budgets that cannot be bypassed: every admission checks every budget or follows
``on_ledger_error``, whatever the caller passes and whatever goes wrong inside."""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import kit_telemetry as kt
from kit_telemetry.budgets.calls import CallScope, LLMRequest
from kit_telemetry.budgets.config import Budget, BudgetConfig
from kit_telemetry.budgets.enforcer import BudgetEnforcer
from kit_telemetry.budgets.gate import BudgetGate
from kit_telemetry.budgets.ledger import Counter, LedgerBackend, ReserveOutcome
from kit_telemetry.budgets.memory import MemoryLedger
from kit_telemetry.budgets.redis import RedisLedger
from kit_telemetry.budgets.webhook import WebhookAlertSink
from kit_telemetry.errors import BudgetExceeded, ConfigError, LedgerError, UsageError
from kit_telemetry.events import BudgetAlertEvent
from kit_telemetry.pricing import ModelPrice
from kit_telemetry.testing import capture
from kit_telemetry.tokens import TokenUsage

# The conftest fixtures' types (a fixture module is not importable by name).
FakeClock = Any
LedgerFactory = Any


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


MODEL = "claude-sonnet-4-5"
INPUT_USD_PER_MTOK = 3.0  # published Anthropic price for claude-sonnet-4-5
OUTPUT_USD_PER_MTOK = 15.0
IN_TOKENS = 1000
OUT_TOKENS = 1000
CALL_USD = (IN_TOKENS * INPUT_USD_PER_MTOK + OUT_TOKENS * OUTPUT_USD_PER_MTOK) / 1e6  # $0.018
LIMIT_USD = 0.10
# Each call reserves and costs CALL_USD, so this many fit under LIMIT_USD; the next is refused.
CALLS_THAT_FIT = math.floor(LIMIT_USD / CALL_USD + 1e-9)

SCOPE = CallScope(session_id="s-1", run_id="r-1", provider="anthropic", model=MODEL)


def run_calls(
    tel: kt.Telemetry,
    attempts: int,
    *,
    response_id: str | None,
    max_tokens: float = OUT_TOKENS,
) -> tuple[int, str]:
    """Makes up to ``attempts`` calls in a new session (new also on the session-wide Redis
    server); returns how many were admitted before a refusal, and the session id."""
    admitted = 0
    session_id = f"s-{uuid.uuid4().hex[:12]}"
    with tel.session(session_id) as session, session.run("go") as run:
        for _ in range(attempts):
            try:
                with (
                    run.turn() as turn,
                    turn.llm_call(
                        "anthropic",
                        MODEL,
                        max_tokens=max_tokens,  # type: ignore[arg-type]
                        estimated_input_tokens=IN_TOKENS,
                    ) as call,
                ):
                    admitted += 1
                    call.record_usage(
                        input_tokens=IN_TOKENS, output_tokens=OUT_TOKENS, response_id=response_id
                    )
            except kt.BudgetExceeded:
                break
    return admitted, session_id


def spent_usd(tel: kt.Telemetry, budget: str, session_id: str) -> float:
    return sum(
        s.spent
        for s in tel.budget_status()
        if (s.name, s.unit, s.scope_key) == (budget, "usd", session_id)
    )


def session_cap() -> Budget:
    return Budget(name="cap", scope="session", limit_usd=LIMIT_USD)


# --- idempotency keys ---------------------------------------------------------------------


def test_empty_response_ids_charge_every_call(ledger_factory: LedgerFactory) -> None:
    """``response_id=""`` is no id: every call is charged, so the limit holds."""
    config = BudgetConfig(budgets=(session_cap(),), ledger=ledger_factory.url)
    with capture(budgets=config, strict=False) as cap:
        admitted, session_id = run_calls(cap.telemetry, 30, response_id="")
        assert admitted == CALLS_THAT_FIT
        assert spent_usd(cap.telemetry, "cap", session_id) == pytest.approx(
            CALLS_THAT_FIT * CALL_USD
        )


def test_empty_idempotency_key_is_not_a_key_on_any_ledger(
    ledger: LedgerBackend, clock: FakeClock
) -> None:
    """A ledger used directly also counts every commit whose key is empty."""
    counter = Counter(budget="b", unit="tokens", scope_key="global", limit=1000)
    for _ in range(3):
        after = ledger.commit(None, [(counter, 10)], now_s=clock(), idempotency_key="")
    assert after == [(30, 0)]


# --- limits and amounts a ledger cannot hold -----------------------------------------------


@pytest.mark.parametrize("amount", [math.nan, math.inf, 2.0, 2**53 + 1, 2**70])
def test_ledgers_reject_amounts_they_cannot_count(
    ledger: LedgerBackend, clock: FakeClock, amount: Any
) -> None:
    """NaN passes every comparison and 2**70 overflows SQLite: neither may reach a counter."""
    counter = Counter(budget="b", unit="tokens", scope_key="global", limit=1000)
    with pytest.raises(ValueError, match="non-negative integer"):
        ledger.reserve("r", [(counter, amount)], now_s=clock(), expires_at_s=clock() + 60)
    with pytest.raises(ValueError, match="non-negative integer"):
        ledger.commit(None, [(counter, amount)], now_s=clock())
    assert ledger.usage([counter], now_s=clock()) == [(0, 0)]


@pytest.mark.parametrize("field_name", ["limit_tokens", "max_llm_calls", "max_tool_calls"])
def test_limits_beyond_the_ledgers_range_are_config_errors(field_name: str) -> None:
    """``limit_tokens = 2**70`` cannot be counted exactly by any ledger: refused at start-up."""
    scope = "global" if field_name == "limit_tokens" else "run"
    with pytest.raises(ConfigError, match=rf"{field_name} {2**70}"):
        Budget(name="huge", scope=scope, **{field_name: 2**70})


def test_a_usd_limit_beyond_the_ledgers_range_is_a_config_error() -> None:
    """Money is counted in integer micro-USD; $1e12 does not fit."""
    with pytest.raises(ConfigError, match="limit_usd"):
        Budget(name="huge", limit_usd=1e12)


def test_the_largest_limit_still_refuses_an_oversized_call(
    ledger: LedgerBackend, clock: FakeClock
) -> None:
    """A worst case beyond any ledger's range is refused, not overflowed into an admit."""
    largest = 2**53 - 1
    enforcer = BudgetEnforcer(
        BudgetConfig(
            budgets=(
                Budget(name="cap", limit_usd=LIMIT_USD),
                Budget(name="tokens", limit_tokens=largest),
            ),
            on_ledger_error="deny",
        ),
        ledger=ledger,
        clock=clock,
    )
    with pytest.raises(BudgetExceeded) as info:
        enforcer.admit_llm_call(SCOPE, worst_case_usd=0.01, worst_case_tokens=2**70)
    assert info.value.budget == "tokens"
    assert not math.isnan(info.value.spent)
    # The budgets stay usable, and an ordinary call still goes through.
    enforcer.settle(
        enforcer.admit_llm_call(SCOPE, worst_case_usd=0.01, worst_case_tokens=100),
        cost_usd=0.01,
        tokens=100,
        idempotency_key=None,
    )
    assert {(s.name, s.spent) for s in enforcer.status()} == {("cap", 0.01), ("tokens", 100)}


def test_sqlite_huge_token_budget_beside_a_usd_one_is_refused_at_start_up(tmp_path: Any) -> None:
    """The issue's case: the token budget is a ConfigError, never an unchecked admit."""
    with pytest.raises(ConfigError, match="limit_tokens"):
        BudgetConfig(
            budgets=(
                Budget(name="cap", limit_usd=LIMIT_USD),
                Budget(name="tokens", limit_tokens=2**70),
            ),
            ledger=f"sqlite:{tmp_path / 'l.db'}",
            on_ledger_error="deny",
        )


# --- max_tokens that are not counts ------------------------------------------------------


BAD_MAX_TOKENS = [math.nan, math.inf, -math.inf, -5, 2.5]


@pytest.mark.parametrize("max_tokens", BAD_MAX_TOKENS, ids=repr)
def test_bad_max_tokens_never_pass_an_exhausted_budget(
    ledger_factory: LedgerFactory, max_tokens: float
) -> None:
    """Lenient mode: a NaN/inf/negative max_tokens counts as unknown, so an exhausted
    budget still refuses and the calls it admitted are charged."""
    config = BudgetConfig(budgets=(session_cap(),), ledger=ledger_factory.url)
    with capture(budgets=config, strict=False) as cap:
        admitted, session_id = run_calls(cap.telemetry, 30, response_id=None, max_tokens=max_tokens)
        # Unknown max_tokens reserves default_max_tokens (4096) of output: $0.06444 with
        # the input estimate. A call is admitted while spent + $0.06444 <= $0.10: two.
        worst_usd = (IN_TOKENS * INPUT_USD_PER_MTOK + 4096 * OUTPUT_USD_PER_MTOK) / 1e6
        assert admitted == math.floor((LIMIT_USD - worst_usd) / CALL_USD + 1e-9) + 1 == 2
        spent = spent_usd(cap.telemetry, "cap", session_id)
        assert spent == pytest.approx(admitted * CALL_USD) and spent <= LIMIT_USD
        reported = cap.metric("kit_telemetry_internal_errors_total", component="api")
        assert reported is not None and reported >= 1


@pytest.mark.parametrize("max_tokens", BAD_MAX_TOKENS, ids=repr)
def test_bad_max_tokens_are_a_usage_error_naming_the_field_when_strict(
    max_tokens: float,
) -> None:
    """Strict mode: the mistake surfaces at once, naming the field and the value."""
    with capture(budgets=[Budget(name="cap", limit_usd=LIMIT_USD)]) as cap:
        with pytest.raises(UsageError, match=rf"max_tokens.*{max_tokens!r}"):
            run_calls(cap.telemetry, 1, response_id=None, max_tokens=max_tokens)


def test_bad_estimated_input_tokens_are_a_usage_error_when_strict() -> None:
    """The other half of the worst case is checked the same way."""
    with (
        capture(budgets=[Budget(name="cap", limit_usd=LIMIT_USD)]) as cap,
        cap.telemetry.session("s") as session,
        session.run("go") as run,
        run.turn() as turn,
        pytest.raises(UsageError, match=r"estimated_input_tokens.*nan"),
    ):
        with turn.llm_call("anthropic", MODEL, estimated_input_tokens=math.nan):  # type: ignore[arg-type]
            pass


class FixedPrice:
    """The gate's price lookup: one model at its published price."""

    def find_price(self, provider: str, model: str) -> ModelPrice | None:
        return ModelPrice(input_per_mtok=INPUT_USD_PER_MTOK, output_per_mtok=OUTPUT_USD_PER_MTOK)


@pytest.mark.parametrize("max_tokens", BAD_MAX_TOKENS, ids=repr)
def test_the_gate_checks_a_request_with_bad_counts_against_every_budget(
    max_tokens: Any,
) -> None:
    """An LLMRequest built by hand with NaN counts is still refused by an exhausted budget."""
    gate = BudgetGate(
        BudgetConfig(budgets=(Budget(name="cap", limit_usd=LIMIT_USD),)), prices=FixedPrice()
    )
    try:
        request = LLMRequest(scope=SCOPE, max_tokens=max_tokens, estimated_input_tokens=max_tokens)
        admission = gate.admit_llm_call(request)
        usage = TokenUsage(input_tokens=IN_TOKENS, output_tokens=OUT_TOKENS)
        for _ in range(CALLS_THAT_FIT + 1):
            gate.settle_llm_call(admission, usage=usage, cost_usd=CALL_USD, response_id=None)
            admission = gate.admit_llm_call(request)
    except BudgetExceeded as exc:
        # Both counts unknown: 4096 input and 4096 output tokens reserved, $0.073728; a
        # call is admitted while spent + that <= $0.10, so two are, and the third refused.
        worst_usd = 4096 * (INPUT_USD_PER_MTOK + OUTPUT_USD_PER_MTOK) / 1e6
        admitted = math.floor((LIMIT_USD - worst_usd) / CALL_USD + 1e-9) + 1
        assert admitted == 2
        assert exc.spent == pytest.approx(admitted * CALL_USD)
        assert exc.requested == pytest.approx(worst_usd)
    else:
        pytest.fail("the exhausted budget admitted the call")
    finally:
        gate.close()


@pytest.mark.parametrize("worst_case_usd", [math.nan, math.inf, -1.0])
def test_the_enforcer_treats_a_nonsense_worst_case_as_unknown(
    clock: FakeClock, worst_case_usd: float
) -> None:
    """Called directly, the enforcer still refuses on an exhausted budget and charges."""
    enforcer = BudgetEnforcer(
        BudgetConfig(budgets=(Budget(name="cap", limit_usd=LIMIT_USD),)),
        ledger=MemoryLedger(),
        clock=clock,
    )
    admission = enforcer.admit_llm_call(
        SCOPE,
        worst_case_usd=worst_case_usd,
        worst_case_tokens=math.nan,  # type: ignore[arg-type]
    )
    assert not admission.ledger_failed
    enforcer.settle(admission, cost_usd=LIMIT_USD, tokens=10, idempotency_key=None)
    with pytest.raises(BudgetExceeded):
        enforcer.admit_llm_call(SCOPE, worst_case_usd=worst_case_usd, worst_case_tokens=10)
    assert [s.spent for s in enforcer.status()] == [LIMIT_USD]


# --- failures inside admission -----------------------------------------------------------


class BrokenLedger(MemoryLedger):
    """A ledger whose reserve fails with something other than ``LedgerError`` (a bug)."""

    def reserve(
        self,
        reservation_id: str,
        amounts: Sequence[tuple[Counter, int]],
        *,
        now_s: float,
        expires_at_s: float,
    ) -> ReserveOutcome:
        raise KeyError("bug in a third-party ledger")


def test_any_failure_inside_admission_follows_deny(clock: FakeClock) -> None:
    """Not only LedgerError: a bug in admission refuses the call when the policy is deny."""
    enforcer = BudgetEnforcer(
        BudgetConfig(budgets=(Budget(name="cap", limit_usd=1.0),), on_ledger_error="deny"),
        ledger=BrokenLedger(),
        clock=clock,
    )
    with pytest.raises(BudgetExceeded) as info:
        enforcer.admit_llm_call(SCOPE, worst_case_usd=0.01, worst_case_tokens=10)
    assert isinstance(info.value.__cause__, KeyError)
    assert "bug in a third-party ledger" in str(info.value)


def test_any_failure_inside_admission_follows_allow_loudly(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """With allow the call goes on, marked as unchecked and logged with the cause."""
    enforcer = BudgetEnforcer(
        BudgetConfig(budgets=(Budget(name="cap", limit_usd=1.0),)),
        ledger=BrokenLedger(),
        clock=clock,
    )
    with caplog.at_level(logging.ERROR, logger="kit_telemetry"):
        admission = enforcer.admit_llm_call(SCOPE, worst_case_usd=0.01, worst_case_tokens=10)
    assert admission.ledger_failed
    assert any(r.exc_info and isinstance(r.exc_info[1], KeyError) for r in caplog.records)


def test_deny_says_the_ledger_is_down_and_why(redis_server: Any, clock: FakeClock) -> None:
    """Redis down with deny: the refusal names the outage and its cause, not "spent nan"."""
    ledger = RedisLedger(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)
    enforcer = BudgetEnforcer(
        BudgetConfig(budgets=(Budget(name="cap", limit_usd=1.0),), on_ledger_error="deny"),
        ledger=ledger,
        clock=clock,
    )
    try:
        with pytest.raises(BudgetExceeded) as info:
            enforcer.admit_llm_call(SCOPE, worst_case_usd=0.01, worst_case_tokens=10)
    finally:
        ledger.close()
    message = str(info.value)
    assert "nan" not in message
    assert "'cap'" in message and "ledger" in message and "unavailable" in message
    assert 'on_ledger_error = "deny"' in message
    assert str(info.value.__cause__) in message
    assert isinstance(info.value.__cause__, LedgerError)


# --- webhook redirects -------------------------------------------------------------------


@dataclass
class Received:
    requests: list[tuple[str, str, bytes]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def redirecting() -> Iterator[tuple[str, Received]]:
    """A receiver on 127.0.0.1: ``/r<code>`` answers that redirect to ``/hook``."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length", "0") or "0")
            body = self.rfile.read(length) if length else b""
            with received.lock:
                received.requests.append((self.command, self.path, body))
            with received.lock:
                received.headers.append(dict(self.headers.items()))
            if self.path.startswith(("/r", "/x")):
                # /x<code> moves to another origin: the same server under another name.
                port = self.server.server_address[1]
                elsewhere = self.path.startswith("/x")
                self.send_response(int(self.path[2:5]))
                self.send_header(
                    "Location", f"http://localhost:{port}/hook" if elsewhere else "/hook"
                )
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(204)
            self.end_headers()

        do_GET = do_POST = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", received
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def alert_event() -> BudgetAlertEvent:
    return BudgetAlertEvent(
        session_id="s-1",
        timestamp_ns=1_700_000_000_000_000_000,
        budget="cap",
        kind="exceeded",
        threshold=1.0,
        scope_key="global",
        spent=0.1,
        limit=0.1,
        spent_usd=0.1,
        limit_usd=0.1,
    )


@pytest.mark.parametrize("code", [307, 308])
def test_webhook_follows_307_and_308_keeping_the_post_and_its_body(
    redirecting: tuple[str, Received], code: int
) -> None:
    """A receiver that moved keeps getting the alert, as the same POST with the same body."""
    base, received = redirecting
    errors: list[tuple[BudgetAlertEvent, BaseException]] = []
    sink = WebhookAlertSink(
        f"{base}/r{code}", max_attempts=1, on_error=lambda e, x: errors.append((e, x))
    )
    sink.deliver(alert_event())
    assert sink.flush(10)
    sink.close()
    assert errors == []
    (first_method, _, first_body), (method, path, body) = received.requests
    assert (first_method, method, path) == ("POST", "POST", "/hook")
    assert body == first_body and json.loads(body)["budget"] == "cap"


def test_webhook_redirect_to_another_origin_keeps_the_body_but_not_user_headers(
    redirecting: tuple[str, Received],
) -> None:
    """A credential in ``headers`` is meant for the configured host, not wherever it points."""
    base, received = redirecting
    sink = WebhookAlertSink(f"{base}/x307", max_attempts=1, headers={"Authorization": "Bearer t"})
    sink.deliver(alert_event())
    assert sink.flush(10)
    sink.close()
    first, moved = received.headers
    assert first["Authorization"] == "Bearer t" and "Authorization" not in moved
    assert moved["Idempotency-Key"] == first["Idempotency-Key"]
    assert received.requests[1][:2] == ("POST", "/hook")
    assert received.requests[1][2] == received.requests[0][2]


@pytest.mark.parametrize("code", [301, 302, 303])
def test_webhook_reports_301_302_303_as_failures(
    redirecting: tuple[str, Received], code: int
) -> None:
    """Following them would turn the POST into an empty GET that counts as delivered."""
    base, received = redirecting
    errors: list[tuple[BudgetAlertEvent, BaseException]] = []
    sink = WebhookAlertSink(
        f"{base}/r{code}",
        max_attempts=3,
        backoff_s=0.0,
        on_error=lambda e, x: errors.append((e, x)),
    )
    sink.deliver(alert_event())
    assert sink.flush(10)
    sink.close()
    assert [m for m, _, _ in received.requests] == ["POST"]  # not retried, never a GET
    assert len(errors) == 1 and str(code) in str(errors[0][1])
