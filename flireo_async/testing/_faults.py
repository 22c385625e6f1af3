"""Fault injection: seeded, reproducible failures per route (operationId) or for every route.

Faults that refuse a request (429, 500/502/503) happen *before* the handler runs, so the state
is untouched, exactly as the SDK's retry policy assumes. Faults that break the answer
(malformed JSON, a dropped connection) happen *after* the handler committed its changes: the
client cannot tell whether its request took effect, which is the case that must never lead to
a blind retry of ``POST /calls/outbound``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["FaultRule", "Faults", "Refusal"]

_HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_HTML_503 = (
    "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
    "<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


@dataclass
class FaultRule:
    """Probabilities (0..1) of each fault for the requests a rule covers.

    ``latency`` is seconds added before the request is handled (wall time, not scaled by the
    server's speed); a ``(low, high)`` pair draws a seeded uniform delay per request.
    ``retry_after`` is the ``Retry-After`` an injected 429 carries. ``times`` caps how many
    faults (of any kind except latency) the rule injects; ``None`` means no cap.
    """

    status_429: float = 0.0
    status_5xx: float = 0.0
    latency: float | tuple[float, float] = 0.0
    malformed_json: float = 0.0
    drop_after_processing: float = 0.0
    retry_after: int = 1
    times: int | None = None
    injected: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        for name in ("status_429", "status_5xx", "malformed_json", "drop_after_processing"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability between 0 and 1, got {value!r}")

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.injected >= self.times


@dataclass(frozen=True)
class Refusal:
    """A response that replaces the handler: an injected 429 or 5xx."""

    status: int
    body: str
    content_type: str
    headers: dict[str, str]


class Faults:
    """The fault rules of one fake server and the seeded generator that draws them.

    A request is governed by the rule of its operationId when there is one, else by the
    global rule (``route=None``). Draws happen in request order, so a sequential test with the
    same seed sees the same faults every run.
    """

    def __init__(self, seed: int | str = 0) -> None:
        self.rng = random.Random(f"flireo-fake-faults:{seed}")
        self.rules: dict[str | None, FaultRule] = {}
        self.log: list[tuple[str, str]] = []
        """``(operationId, fault kind)`` for every fault injected, in order."""

    def set(
        self,
        route: str | None = None,
        *,
        status_429: float = 0.0,
        status_5xx: float = 0.0,
        latency: float | tuple[float, float] = 0.0,
        malformed_json: float = 0.0,
        drop_after_processing: float = 0.0,
        retry_after: int = 1,
        times: int | None = None,
    ) -> FaultRule:
        """Replace the rule for ``route`` (an operationId, or ``None`` for every route)."""
        rule = FaultRule(
            status_429=status_429,
            status_5xx=status_5xx,
            latency=latency,
            malformed_json=malformed_json,
            drop_after_processing=drop_after_processing,
            retry_after=retry_after,
            times=times,
        )
        self.rules[route] = rule
        return rule

    def clear(self, route: str | None = None, *, all_routes: bool = True) -> None:
        """Remove every rule (default), or only the rule of ``route`` with ``all_routes=False``."""
        if all_routes and route is None:
            self.rules.clear()
        else:
            self.rules.pop(route, None)

    def rule_for(self, operation_id: str | None) -> FaultRule | None:
        rule = self.rules.get(operation_id) if operation_id is not None else None
        if rule is None:
            rule = self.rules.get(None)
        return rule

    def latency_for(self, operation_id: str | None) -> float:
        """Seconds of injected latency for this request (0 when none)."""
        rule = self.rule_for(operation_id)
        if rule is None:
            return 0.0
        if isinstance(rule.latency, tuple):
            low, high = rule.latency
            return self.rng.uniform(low, high)
        return float(rule.latency)

    def _hit(self, rule: FaultRule, probability: float) -> bool:
        # Draw only for probabilities strictly between 0 and 1, so that zero and certain faults
        # do not consume random numbers and shift the sequence the other draws see.
        if probability <= 0.0 or rule.exhausted:
            return False
        return probability >= 1.0 or self.rng.random() < probability

    def _count(self, rule: FaultRule, operation_id: str | None, kind: str) -> None:
        rule.injected += 1
        self.log.append((operation_id or "", kind))

    def refusal(self, operation_id: str | None) -> Refusal | None:
        """An injected 429 or 5xx for this request, drawn before it is processed."""
        rule = self.rule_for(operation_id)
        if rule is None:
            return None
        if self._hit(rule, rule.status_429):
            self._count(rule, operation_id, "status_429")
            retry = max(0, int(rule.retry_after))
            return Refusal(
                429,
                f'{{"error": "Rate limit exceeded", "retry_after": {retry}}}',
                "application/json",
                {"Retry-After": str(retry)},
            )
        if self._hit(rule, rule.status_5xx):
            self._count(rule, operation_id, "status_5xx")
            status = self.rng.choice((500, 502, 503))
            if status != 500 and self.rng.random() < 0.5:
                # What a reverse proxy in front of the API answers when the upstream is down.
                return Refusal(status, _HTML_502 if status == 502 else _HTML_503, "text/html", {})
            message = {
                500: '{"error": "Internal server error", "message": "An unexpected error occurred"}',
                502: '{"error": "Bad gateway", "message": "Upstream provider error"}',
                503: '{"error": "Service unavailable", "message": "The service is temporarily unavailable"}',
            }[status]
            return Refusal(status, message, "application/json", {})
        return None

    def breakage(self, operation_id: str | None) -> str | None:
        """``"malformed_json"`` or ``"drop_after_processing"`` for a processed request, or None."""
        rule = self.rule_for(operation_id)
        if rule is None:
            return None
        if self._hit(rule, rule.drop_after_processing):
            self._count(rule, operation_id, "drop_after_processing")
            return "drop_after_processing"
        if self._hit(rule, rule.malformed_json):
            self._count(rule, operation_id, "malformed_json")
            return "malformed_json"
        return None
