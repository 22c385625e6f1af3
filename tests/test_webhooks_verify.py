"""Webhook verification: signatures, every failure reason, the timestamp window, typed events."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import pytest
from multidict import CIMultiDict

from flireo_async import UNSET, FlireoError
from flireo_async.models import LLMMessage
from flireo_async.webhooks import (
    AssistantRequestMessage,
    EndOfCallReportMessage,
    GenericWebhookMessage,
    StatusUpdateMessage,
    ToolCallsMessage,
    VerificationFailure,
    WebhookVerificationError,
    compute_signature,
    parse_message,
    sign,
    verify,
)

SECRET = "whsec_4f9c2e7a1b"
NOW = 1_767_787_200  # 2026-01-07T12:00:00Z

CALL = {"id": "4d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09", "type": "inbound_phone_call", "status": "in-progress"}
NUMBER = {"id": "c4a8e2f1-3b6d-4f9a-8e7c-1d2b3a4c5e6f", "number": "+31850835037", "name": "Main Support Line"}


def envelope(event: str, **fields: Any) -> dict[str, Any]:
    """A snake_case webhook payload as documented (§3.3, §3.4)."""
    message = {
        "type": event,
        "timestamp": "2026-01-07T12:00:00.000Z",
        "call": dict(CALL),
        "phone_number": dict(NUMBER),
        "customer": {"number": "+31612345678"},
    }
    message.update(fields)
    return {"message": message}


def tool_calls(*calls: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    return envelope(
        "tool-calls",
        tool_call_list=[
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
            for call_id, name, args in calls
        ],
    )


END_OF_CALL = envelope(
    "end-of-call-report",
    call={**CALL, "status": "ended"},
    duration_seconds=84,
    end_reason="user_hangup",
    started_at="2026-01-07T12:04:06.000Z",
    ended_at="2026-01-07T12:05:30Z",
    summary="Caller asked for opening hours and booked an appointment.",
    messages=[
        {"role": "assistant", "content": "Hallo, welkom bij Acme."},
        {"role": "user", "content": "Ik wil een afspraak maken."},
    ],
    analysis={"sentiment": 8, "appointment_booked": True},
    recording_url="https://recordings.flireo.example/4d3c2b1a.ogg",
    assistant={"metadata": {"crm_id": "A-1042"}},
)


def signed(payload: Any, *, secret: str = SECRET, timestamp: int = NOW) -> tuple[bytes, dict[str, str]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return body, sign(body, secret, timestamp)


def failure(
    body: bytes, headers: Any, secret: str | None = SECRET, **kwargs: Any
) -> WebhookVerificationError:
    kwargs.setdefault("now", NOW)
    with pytest.raises(WebhookVerificationError) as info:
        verify(body, headers, secret, **kwargs)
    return info.value


# --- signatures -------------------------------------------------------------------------------


def test_known_answer_vector_pinned() -> None:
    # Computed once with `openssl dgst -sha256 -hmac whsec_4f9c2e7a1b` over the same bytes.
    body = b'{"message":{"type":"status-update"}}'
    expected = "15a2632e9023e779cf4621df6fcca1b6604b33acfc5eaf1e562c07ca2ab17b36"
    assert compute_signature(body, SECRET, "1767787200") == expected
    headers = sign(body, SECRET, 1767787200)
    assert headers["X-Webhook-Signature"] == "sha256=" + expected
    assert headers["X-Webhook-Timestamp"] == "1767787200"


@pytest.mark.parametrize(
    ("secret", "timestamp", "body"),
    [
        ("k", "0", b""),
        ("whsec_x", "1767787200", b'{"message": {"type": "tool-calls"}}'),
        ("s\u00e9cret-\u2603", "1700000000", '{"a": "\u00e9\u00e8"}'.encode()),
        ("k" * 100, "9999999999", b"\x00\xff not even json"),
    ],
)
def test_signature_is_hmac_sha256_over_timestamp_dot_raw_body(
    secret: str, timestamp: str, body: bytes
) -> None:
    by_hand = hmac.new(secret.encode("utf-8"), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert compute_signature(body, secret, timestamp) == by_hand
    assert by_hand == by_hand.lower()
    assert len(by_hand) == 64


def test_sign_headers() -> None:
    headers = sign(b"{}", SECRET, NOW, event="status-update")
    assert headers == {
        "Content-Type": "application/json",
        "X-Webhook-Timestamp": str(NOW),
        "X-Webhook-Signature": "sha256=" + compute_signature(b"{}", SECRET, str(NOW)),
        "X-Webhook-Event": "status-update",
    }
    # Without a timestamp: now.
    assert abs(int(sign(b"{}", SECRET)["X-Webhook-Timestamp"]) - time.time()) < 5


# --- successful verification ------------------------------------------------------------------


def test_verify_returns_typed_event() -> None:
    body, headers = signed(envelope("status-update", end_reason="user_hangup"))
    event = verify(body, headers, SECRET, now=NOW)
    assert isinstance(event, StatusUpdateMessage)
    assert event.call.id == CALL["id"]
    assert event.end_reason == "user_hangup"
    assert event.timestamp == dt.datetime(2026, 1, 7, 12, tzinfo=dt.timezone.utc)


def test_verify_with_real_clock() -> None:
    body = json.dumps(envelope("status-update")).encode()
    assert isinstance(verify(body, sign(body, SECRET), SECRET), StatusUpdateMessage)


@pytest.mark.parametrize(
    "transform",
    [
        pytest.param(lambda h: {k.lower(): v for k, v in h.items()}, id="lowercase-dict"),
        pytest.param(lambda h: {k.upper(): v for k, v in h.items()}, id="uppercase-dict"),
        pytest.param(lambda h: CIMultiDict(h), id="CIMultiDict"),
        pytest.param(
            lambda h: {**h, "X-Webhook-Signature": h["X-Webhook-Signature"].removeprefix("sha256=")},
            id="bare-hex",
        ),
        pytest.param(
            lambda h: {
                **h,
                "X-Webhook-Signature": h["X-Webhook-Signature"].upper().replace("SHA256=", "sha256="),
            },
            id="uppercase-hex",
        ),
        pytest.param(
            lambda h: {k: v.encode() if k.startswith("X-") else v for k, v in h.items()}, id="bytes-values"
        ),
    ],
)
def test_header_forms_accepted(transform: Any) -> None:
    body, headers = signed(envelope("status-update"))
    assert isinstance(verify(body, transform(headers), SECRET, now=NOW), StatusUpdateMessage)


def test_raw_bytes_are_verified_not_reserialised_json() -> None:
    # Odd spacing and key order, as a server may send them: the signature covers these bytes.
    body = b'{ "message" : {"timestamp":"2026-01-07T12:00:00Z", "type":"status-update",\n "call": {"status":"ended","id":"c1","type":"web_call"}} }'
    headers = sign(body, SECRET, NOW)
    event = verify(body, headers, SECRET, now=NOW)
    assert isinstance(event, StatusUpdateMessage)
    assert event.call.id == "c1"
    reserialised = json.dumps(json.loads(body)).encode()
    assert failure(reserialised, headers).reason is VerificationFailure.BAD_SIGNATURE
    assert isinstance(verify(bytearray(body), headers, SECRET, now=NOW), StatusUpdateMessage)
    assert isinstance(verify(memoryview(body), headers, SECRET, now=NOW), StatusUpdateMessage)


@pytest.mark.parametrize("not_bytes", ['{"message": {}}', {"message": {}}])
def test_body_must_be_bytes(not_bytes: Any) -> None:
    with pytest.raises(TypeError, match="raw request bytes"):
        verify(not_bytes, {}, SECRET)


# --- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["X-Webhook-Timestamp", "X-Webhook-Signature"])
def test_missing_header(missing: str) -> None:
    body, headers = signed(envelope("status-update"))
    del headers[missing]
    exc = failure(body, headers)
    assert exc.reason is VerificationFailure.MISSING_HEADER
    assert exc.header == missing
    assert exc.http_status == 401
    exc = failure(body, {**headers, missing: ""})
    assert exc.reason is VerificationFailure.MISSING_HEADER


@pytest.mark.parametrize("value", ["abc", "1767787200.5", "-1767787200", "1e9", "\u0661\u0662\u0663", "0x10"])
def test_invalid_timestamp(value: str) -> None:
    body, headers = signed(envelope("status-update"))
    exc = failure(body, {**headers, "X-Webhook-Timestamp": value})
    assert exc.reason is VerificationFailure.INVALID_TIMESTAMP
    assert exc.http_status == 401


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda b, h: (b, sign(b, "other-secret", NOW)), id="wrong-secret"),
        pytest.param(lambda b, h: (b.replace(b"in-progress", b"ended"), h), id="tampered-body"),
        pytest.param(lambda b, h: (b + b" ", h), id="appended-byte"),
        pytest.param(lambda b, h: (b, {**h, "X-Webhook-Timestamp": str(NOW + 1)}), id="tampered-timestamp"),
        pytest.param(lambda b, h: (b, {**h, "X-Webhook-Signature": "sha256=" + "0" * 64}), id="zeros"),
        pytest.param(lambda b, h: (b, {**h, "X-Webhook-Signature": "sha256=zz"}), id="not-hex"),
        pytest.param(
            lambda b, h: (b, {**h, "X-Webhook-Signature": h["X-Webhook-Signature"][:-2]}), id="truncated"
        ),
        pytest.param(lambda b, h: (b, {**h, "X-Webhook-Signature": "sha256=\u00e9" * 9}), id="non-ascii"),
        pytest.param(
            lambda b, h: (b, {**h, "X-Webhook-Signature": "sha1=" + h["X-Webhook-Signature"][7:]}),
            id="other-scheme",
        ),
    ],
)
def test_bad_signature(mutate: Any) -> None:
    body, headers = mutate(*signed(envelope("status-update")))
    exc = failure(body, headers)
    assert exc.reason is VerificationFailure.BAD_SIGNATURE
    assert exc.http_status == 401


@pytest.mark.parametrize(
    ("offset", "ok"), [(300, True), (-300, True), (301, False), (-301, False), (86400, False)]
)
def test_timestamp_window_both_directions(offset: int, ok: bool) -> None:
    # offset > 0: the delivery is older than now (replay); < 0: it claims to come from the future.
    body, headers = signed(envelope("status-update"), timestamp=NOW - offset)
    if ok:
        assert isinstance(verify(body, headers, SECRET, now=NOW), StatusUpdateMessage)
        return
    exc = failure(body, headers)
    assert exc.reason is VerificationFailure.STALE_TIMESTAMP
    assert exc.http_status == 401
    assert ("old" if offset > 0 else "future") in str(exc)


def test_tolerance_is_configurable() -> None:
    body, headers = signed(envelope("status-update"), timestamp=NOW - 30)
    assert failure(body, headers, tolerance=10).reason is VerificationFailure.STALE_TIMESTAMP
    assert verify(body, headers, SECRET, tolerance=30, now=NOW) is not None
    with pytest.raises(ValueError, match="tolerance"):
        verify(body, headers, SECRET, tolerance=-1, now=NOW)


def test_forged_and_stale_reads_as_bad_signature() -> None:
    # The signature is checked before the window: a stale forgery reveals nothing about timing.
    body, headers = signed(envelope("status-update"), secret="attacker", timestamp=NOW - 3600)
    assert failure(body, headers).reason is VerificationFailure.BAD_SIGNATURE


@pytest.mark.parametrize("secret", [None, ""])
def test_missing_secret_is_an_error_unless_opted_out(secret: str | None) -> None:
    body = json.dumps(envelope("status-update")).encode()
    exc = failure(body, {}, secret)
    assert exc.reason is VerificationFailure.MISSING_SECRET
    # Explicit opt-out: no header is needed (and none is checked).
    assert isinstance(verify(body, {}, secret, require_signature=False), StatusUpdateMessage)


def test_given_secret_is_always_enforced() -> None:
    body = json.dumps(envelope("status-update")).encode()
    exc = failure(body, {}, SECRET, require_signature=False)
    assert exc.reason is VerificationFailure.MISSING_HEADER


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b'{"message": ', b"\xff\xfe{}", b"[1, 2]", b'"text"', b'{"message": NaN}'],
)
def test_bad_json(body: bytes) -> None:
    exc = failure(body, sign(body, SECRET, NOW))
    assert exc.reason is VerificationFailure.BAD_JSON
    assert exc.http_status == 400


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"msg": {}},
        {"message": "status-update"},
        {"message": {"type": "status-update"}},  # no call, no timestamp
        {"message": {**envelope("tool-calls")["message"]}},  # no tool_call_list
        envelope("end-of-call-report", duration_seconds="84", summary="s"),  # a string, not an integer
    ],
)
def test_invalid_payload(payload: dict[str, Any]) -> None:
    exc = failure(*signed(payload))
    assert exc.reason is VerificationFailure.INVALID_PAYLOAD
    assert exc.http_status == 400


def test_errors_are_flireo_errors_and_never_reveal_secrets(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body, headers = signed(envelope("status-update"))
    expected = headers["X-Webhook-Signature"]
    cases = [
        failure(body, {**headers, "X-Webhook-Signature": "sha256=" + "a" * 64}),
        failure(body + b"x", headers),
        failure(body, headers, now=NOW + 10_000),
        failure(body, {"X-Webhook-Timestamp": str(NOW)}),
        failure(b"nope", sign(b"nope", SECRET, NOW)),
    ]
    for exc in cases:
        assert isinstance(exc, FlireoError)
        text = str(exc) + repr(exc.args)
        assert SECRET not in text
        assert expected[7:] not in text
        assert "a" * 64 not in text  # nor the received signature
    assert SECRET not in caplog.text
    assert expected[7:] not in caplog.text


def test_reason_values_and_statuses() -> None:
    assert {r.value: r.http_status for r in VerificationFailure} == {
        "missing_secret": 401,
        "missing_header": 401,
        "invalid_timestamp": 401,
        "bad_signature": 401,
        "stale_timestamp": 401,
        "bad_json": 400,
        "invalid_payload": 400,
    }
    assert VerificationFailure.BAD_SIGNATURE == "bad_signature"  # type: ignore[comparison-overlap]


# --- typed events, both casings ---------------------------------------------------------------


def test_tool_calls_snake_case() -> None:
    event = parse_message(json.dumps(tool_calls(("tool_abc", "lookup_customer", {"phone": "+316"}))).encode())
    assert isinstance(event, ToolCallsMessage)
    (call,) = event.tool_call_list
    assert (call.id, call.type, call.function.name, call.function.arguments) == (
        "tool_abc",
        "function",
        "lookup_customer",
        {"phone": "+316"},
    )
    assert event.phone_number is not UNSET
    assert event.phone_number.number == "+31850835037"
    assert event.customer is not UNSET
    assert event.customer.number == "+31612345678"


def test_tool_calls_camel_case() -> None:
    message = tool_calls(("tool_1", "book", {"slot": "09:00"}))["message"]
    message["toolCallList"] = message.pop("tool_call_list")
    message["phoneNumber"] = message.pop("phone_number")
    message["call"]["type"] = "inboundPhoneCall"
    event = parse_message(json.dumps({"message": message}).encode())
    assert isinstance(event, ToolCallsMessage)
    assert event.tool_call_list[0].function.name == "book"
    assert event.phone_number is not UNSET
    assert event.phone_number.name == "Main Support Line"
    assert event.call.type == "inboundPhoneCall"  # an open string: older spellings pass through
    assert event.extra == {}  # aliases are recognised, not dumped into extra


def test_end_of_call_report_snake_case() -> None:
    event = parse_message(json.dumps(END_OF_CALL).encode())
    assert isinstance(event, EndOfCallReportMessage)
    assert event.duration_seconds == 84
    assert event.summary.startswith("Caller asked")
    assert event.recording_url == "https://recordings.flireo.example/4d3c2b1a.ogg"
    assert event.end_reason == "user_hangup"
    assert event.started_at == dt.datetime(2026, 1, 7, 12, 4, 6, tzinfo=dt.timezone.utc)
    assert event.ended_at == dt.datetime(2026, 1, 7, 12, 5, 30, tzinfo=dt.timezone.utc)
    assert event.messages == [
        LLMMessage(role="assistant", content="Hallo, welkom bij Acme."),
        LLMMessage(role="user", content="Ik wil een afspraak maken."),
    ]
    assert event.analysis == {"sentiment": 8, "appointment_booked": True}
    assert event.assistant == {"metadata": {"crm_id": "A-1042"}}


def test_end_of_call_report_camel_case() -> None:
    message = dict(END_OF_CALL["message"])
    message["durationSeconds"] = message.pop("duration_seconds")
    message["recordingUrl"] = message.pop("recording_url")
    message["phoneNumber"] = message.pop("phone_number")
    message["call"] = {**CALL, "type": "inboundPhoneCall", "status": "ended"}
    event = parse_message(json.dumps({"message": message}).encode())
    assert isinstance(event, EndOfCallReportMessage)
    assert event.duration_seconds == 84
    assert event.recording_url == "https://recordings.flireo.example/4d3c2b1a.ogg"
    assert event.phone_number is not UNSET
    assert event.phone_number.number == "+31850835037"
    assert event.extra == {}


def test_status_update_and_assistant_request() -> None:
    status = parse_message(
        json.dumps(
            envelope(
                "status-update", call={**CALL, "status": "ended-with-error"}, error="STT connection failed"
            )
        ).encode()
    )
    assert isinstance(status, StatusUpdateMessage)
    assert (status.call.status, status.error) == ("ended-with-error", "STT connection failed")
    ringing = parse_message(
        json.dumps(envelope("assistant-request", call={**CALL, "status": "ringing"})).encode()
    )
    assert isinstance(ringing, AssistantRequestMessage)
    assert ringing.call.status == "ringing"


def test_web_call_nulls() -> None:
    event = parse_message(
        json.dumps(
            envelope(
                "status-update",
                call={**CALL, "type": "web_call"},
                phone_number={"id": None, "number": None},
                customer={"number": None},
            )
        ).encode()
    )
    assert isinstance(event, StatusUpdateMessage)
    assert event.phone_number is not UNSET
    assert event.phone_number.number is None
    assert event.customer is not UNSET
    assert event.customer.number is None


def test_unknown_event_type_decodes_to_generic_event() -> None:
    body, headers = signed(envelope("transcript", transcript="hello", call={**CALL, "pipeline": "standard"}))
    event = verify(body, headers, SECRET, now=NOW)
    assert isinstance(event, GenericWebhookMessage)
    assert event.type == "transcript"
    assert event.call is not UNSET
    assert event.call.pipeline == "standard"
    assert event.extra == {"transcript": "hello"}
    # Even a bare unknown message (only a type) decodes.
    assert isinstance(parse_message(b'{"message": {"type": "speech-update"}}'), GenericWebhookMessage)


def test_unknown_fields_are_kept() -> None:
    event = parse_message(json.dumps(envelope("status-update", new_field={"x": 1})).encode())
    assert event.extra == {"new_field": {"x": 1}}
