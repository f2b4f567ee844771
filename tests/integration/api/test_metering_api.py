"""The metering API over the test's transaction."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from tests.builders import IOT_EXAMPLES, device_models, metered_registry
from zhkh.app import create_app
from zhkh.core.config import Settings
from zhkh.housing.models import Organisation
from zhkh.identity.service import create_token
from zhkh.metering.models import DeadLetter, Reading
from zhkh.metering.service import bind_device, register_device
from zhkh.notify.models import ContactKind
from zhkh.notify.service import add_contact


@pytest.fixture
def client(session: Session, tmp_path: Path) -> Iterator[TestClient]:
    metered_registry(session, tmp_path)
    factory = sessionmaker(bind=session.connection(), join_transaction_mode="create_savepoint")
    with TestClient(create_app(session_factory=factory, settings=Settings())) as test_client:
        yield test_client


def bearer(session: Session, name: str, scopes: list[str], subject: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(session, name, scopes, subject).secret}"}


def test_batch_reports_each_reading(client: TestClient, session: Session) -> None:
    writer = bearer(session, "gateway", ["readings:write"])
    body = {
        "readings": [
            {"serial": "CW-1001", "taken_at": "2026-02-25", "value": "100"},
            {"serial": "CW-1001", "taken_at": "2026-03-25T10:00:00+03:00", "value": "95"},
            {"serial": "EL-1002", "taken_at": "2026-03-25", "values": {"t1": "1000", "t2": "400"}},
            {"serial": "NOPE", "taken_at": "2026-03-25", "value": "1"},
        ]
    }
    response = client.post("/api/v1/readings", json=body, headers=writer)
    assert response.status_code == 200
    answer = response.json()
    assert [(r["status"], r.get("reason")) for r in answer["results"]] == [
        ("accepted", None),
        ("rejected", "below_previous"),
        ("accepted", None),
        ("quarantined", "unknown_meter"),
    ]
    assert [z["zone"] for z in answer["results"][2]["zones"]] == [1, 2]
    assert answer["summary"] == {"accepted": 2, "rejected": 1, "quarantined": 1}
    assert set(answer["results"][0]) == {"index", "status", "reading_id"}, "empty fields are left out"
    assert answer["results"][1]["detail"] == "95 is less than the previous reading 100 of 2026-02-25"
    again = client.post("/api/v1/readings", json=body, headers=writer).json()
    assert [r["status"] for r in again["results"][:3]] == ["duplicate", "duplicate", "duplicate"]


def test_batch_needs_the_scope_and_a_valid_body(client: TestClient, session: Session) -> None:
    body = {"readings": [{"serial": "CW-1001", "taken_at": "2026-02-25", "value": "1"}]}
    assert client.post("/api/v1/readings", json=body).status_code == 401
    reader = bearer(session, "reader", ["metering:read"])
    assert client.post("/api/v1/readings", json=body, headers=reader).status_code == 403
    writer = bearer(session, "writer", ["readings:write"])
    both = {"readings": [{"serial": "CW-1001", "taken_at": "2026-02-25", "value": "1", "values": {"t1": "1"}}]}
    assert client.post("/api/v1/readings", json=both, headers=writer).status_code == 422
    huge = {"readings": [{"serial": "CW-1001", "taken_at": "2026-02-25", "value": str(n)} for n in range(10_001)]}
    too_many = client.post("/api/v1/readings", json=huge, headers=writer)
    assert too_many.status_code == 413
    assert too_many.json()["error"] == "TooManyReadings"


def test_correction_and_meter_history(client: TestClient, session: Session) -> None:
    writer = bearer(session, "writer", ["readings:write"])
    reader = bearer(session, "reader", ["metering:read"])
    posted = client.post(
        "/api/v1/readings",
        json={"readings": [{"serial": "CW-1001", "taken_at": "2026-02-25", "value": "1100"}]},
        headers=writer,
    ).json()
    reading_id = posted["results"][0]["reading_id"]
    fixed = client.post(
        f"/api/v1/readings/{reading_id}/corrections", json={"value": "110", "reason": "typo"}, headers=writer
    )
    assert fixed.status_code == 201
    assert fixed.json()["corrects_id"] == reading_id
    history = client.get("/api/v1/meters/CW-1001/readings", headers=reader).json()["items"]
    assert [(r["value"], r["superseded_by_id"] is not None) for r in history] == [("1100", True), ("110", False)]
    meter = client.get("/api/v1/meters/CW-1001", headers=reader).json()
    assert meter["last_readings"][0]["value"] == "110"
    assert (
        client.post(
            f"/api/v1/readings/{reading_id}/corrections", json={"value": "111", "reason": "again"}, headers=writer
        ).status_code
        == 400
    )
    assert client.get("/api/v1/meters/NOPE", headers=reader).status_code == 404


def test_resident_submits_within_the_window(client: TestClient, session: Session) -> None:
    resident = bearer(session, "кв. 1", ["resident"], "account:1001")
    session.execute(update(Organisation).values(reading_window_from=1, reading_window_to=31))
    meters = client.get("/api/v1/me/meters", headers=resident).json()
    assert sorted(m["serial"] for m in meters) == ["CW-1001", "HW-1001"]
    accepted = client.post("/api/v1/me/readings", json={"serial": "CW-1001", "value": "12.5"}, headers=resident)
    assert accepted.status_code == 201
    assert accepted.json()["status"] == "accepted"
    lower = client.post("/api/v1/me/readings", json={"serial": "CW-1001", "value": "11"}, headers=resident)
    assert lower.status_code == 422
    assert "less than the previous reading" in lower.json()["detail"]
    other = client.post("/api/v1/me/readings", json={"serial": "EL-1002", "value": "1"}, headers=resident)
    assert other.status_code == 404
    session.execute(update(Organisation).values(reading_window_from=1, reading_window_to=1))
    closed = client.post("/api/v1/me/readings", json={"serial": "CW-1001", "value": "13"}, headers=resident)
    assert closed.status_code == 400
    assert closed.json()["error"] == "OutsideReadingWindow"
    admin = bearer(session, "root", ["admin"])
    assert client.get("/api/v1/me/meters", headers=admin).status_code == 403, "admin is not a resident"


def test_resident_notifications_and_preferences(client: TestClient, session: Session) -> None:
    resident = bearer(session, "кв. 1", ["resident"], "account:1001")
    contact = add_contact(session, ContactKind.RESIDENT, "Иванов", email="i@example.ru", account_number="1001")
    contacts = client.get("/api/v1/me/contacts", headers=resident).json()
    assert contacts[0]["default_channels"] == ["in_app", "email"]
    saved = client.put(
        f"/api/v1/me/contacts/{contact.id}/preferences/leak", json={"channels": ["sms"]}, headers=resident
    )
    assert saved.json() == {"channels": ["sms"]}
    assert client.get("/api/v1/me/contacts", headers=resident).json()[0]["preferences"] == {"leak": ["sms"]}
    bad = client.put(f"/api/v1/me/contacts/{contact.id}/preferences/leak", json={"channels": ["fax"]}, headers=resident)
    assert bad.status_code == 400
    assert client.get("/api/v1/me/notifications", headers=resident).json() == []


def test_waterius_posts_get_200_and_are_idempotent(client: TestClient, session: Session) -> None:
    device_models(session)
    register_device(session, "waterius", "10099775", secret="3F9A1C0B7E2D4A6F8B1C3E5D7F9A0B2C4")
    from datetime import UTC, datetime

    bind_device(session, "waterius", "10099775", "ch0", "HW-1001", since=datetime(2025, 1, 1, tzinfo=UTC))
    bind_device(session, "waterius", "10099775", "ch1", "CW-1001", since=datetime(2025, 1, 1, tzinfo=UTC))
    body = (IOT_EXAMPLES / "waterius-http.json").read_bytes()
    headers = {"Waterius-Token": "3F9A1C0B7E2D4A6F8B1C3E5D7F9A0B2C4", "Content-Type": "application/json"}
    first = client.post("/api/v1/waterius", content=body, headers=headers)
    assert (first.status_code, first.json()) == (200, {"status": "ok", "readings": ["accepted"]})
    second = client.post("/api/v1/waterius", content=body, headers=headers)
    assert (second.status_code, second.json()["readings"]) == (200, ["duplicate"])
    assert len(session.scalars(select(Reading)).all()) == 2
    wrong = client.post("/api/v1/waterius", content=body, headers={"Waterius-Token": "nope"})
    assert wrong.status_code == 401
    stranger = json.loads(body) | {"esp_id": 1}
    assert client.post("/api/v1/waterius", json=stranger, headers=headers).status_code == 404
    assert client.post("/api/v1/waterius", content=b"garbage", headers=headers).status_code == 400
    reasons = [d.reason for d in session.scalars(select(DeadLetter).order_by(DeadLetter.id))]
    assert reasons == ["unknown waterius device 1", "not a waterius JSON body with an esp_id"]


@pytest.mark.parametrize(
    ("reading", "complaint"),
    [
        ({"taken_at": "9999-12-31T23:59:59-12:00", "value": "1"}, "out of range"),
        ({"taken_at": "0001-01-01T00:00:00+14:00", "value": "1"}, "out of range"),
        ({"taken_at": "2150-01-01", "value": "1"}, "between 1970 and 2099"),
        ({"taken_at": "2026-02-25", "value": "1e400000"}, "more than 12 digits"),
        ({"taken_at": "2026-02-25", "value": "NaN"}, "finite number"),
        ({"taken_at": "2026-02-25", "values": {"t1": "1e-400000", "t2": "Infinity"}}, "finite number"),
    ],
)
def test_readings_no_meter_can_have_get_422_with_the_reason(
    client: TestClient, session: Session, reading: dict[str, object], complaint: str
) -> None:
    writer = bearer(session, "writer", ["readings:write"])
    response = client.post("/api/v1/readings", json={"readings": [{"serial": "CW-1001", **reading}]}, headers=writer)
    assert response.status_code == 422
    assert complaint in response.text
    assert len(response.text) < 2000, "the answer does not echo a 400,000-digit number"
    assert session.scalar(select(Reading)) is None


def test_resident_mistakes_get_422_and_rejected_readings_are_kept(client: TestClient, session: Session) -> None:
    resident = bearer(session, "кв. 1", ["resident"], "account:1001")
    session.execute(update(Organisation).values(reading_window_from=1, reading_window_to=31))
    for values in ({"x": "1"}, {}):
        answer = client.post("/api/v1/me/readings", json={"serial": "CW-1001", "values": values}, headers=resident)
        assert answer.status_code == 422
        assert "values are keyed t1, t2, t3" in answer.text
    assert client.post("/api/v1/me/readings", json={"serial": "CW-1001", "value": "12.5"}, headers=resident).is_success
    lower = client.post("/api/v1/me/readings", json={"serial": "CW-1001", "value": "11"}, headers=resident)
    assert lower.status_code == 422
    assert lower.json()["error"] == "ReadingRejected"
    kept = session.scalars(select(Reading.status).where(Reading.value == 11)).all()
    assert [status.value for status in kept] == ["rejected"]
    two_zones = bearer(session, "кв. 2", ["resident"], "account:1002")
    single = client.post("/api/v1/me/readings", json={"serial": "EL-1002", "value": "5"}, headers=two_zones)
    assert single.status_code == 422
    assert single.json()["detail"] == "meter EL-1002 has 2 zones: give values for t1, t2"


def test_lorawan_servers_and_decoders_post_over_http(client: TestClient, session: Session) -> None:
    """ChirpStack's HTTP integration, a webhook of The Things Stack, wmbusmeters with curl and the
    platform's JSON post the same messages they would publish over MQTT: each reading is stored
    with the HTTP source, a repeat is a duplicate, and the answer says so per reading."""
    from tests.builders import platform_example

    device_models(session)
    since = datetime(2024, 2, 1, tzinfo=UTC)
    register_device(session, "pulse-lorawan", "70b3d57ed0051234")
    register_device(session, "pulse-lorawan-tts", "70B3D57ED0055678")
    register_device(session, "iperl", "33225544")
    bind_device(session, "chirpstack", "70b3d57ed0051234", "volume_m3", "CW-1001", since=since)
    bind_device(session, "tts", "70B3D57ED0055678", "volume_m3", "HW-1001", since=since)
    bind_device(session, "wmbusmeters", "33225544", "total_m3", "B-CW", since=since)
    uplink = json.loads((IOT_EXAMPLES / "tts-up.json").read_text())
    uplink["end_device_ids"]["dev_eui"] = "70B3D57ED0055678"
    uplink["uplink_message"]["decoded_payload"]["volume_m3"] = 45.5
    posts = [
        ("/api/v1/integrations/chirpstack?event=up", (IOT_EXAMPLES / "chirpstack-up.json").read_bytes()),
        ("/api/v1/integrations/tts", json.dumps(uplink).encode()),
        ("/api/v1/integrations/wmbusmeters", (IOT_EXAMPLES / "wmbusmeters-iperl.json").read_bytes()),
        ("/api/v1/integrations/platform", platform_example("platform.json")),
    ]
    writer = bearer(session, "lorawan-server", ["readings:write"])
    for path, body in posts:
        answer = client.post(path, content=body, headers=writer)
        assert (answer.status_code, answer.json()) == (
            200,
            {"status": "processed", "readings": [{"status": "accepted", "reason": None}]},
        ), path
    stored = session.execute(select(Reading.source, Reading.value).order_by(Reading.id)).all()
    assert [(source, value) for source, value in stored][:3] == [
        ("http:chirpstack", Decimal("123.456")),
        ("http:tts", Decimal("45.5")),
        ("http:wmbusmeters", Decimal("123.529")),
    ]
    assert stored[3].source == "http:platform"
    again = client.post(posts[0][0], content=posts[0][1], headers=writer)
    assert again.json()["readings"] == [{"status": "duplicate", "reason": None}]
    assert len(session.scalars(select(Reading)).all()) == 4
    assert client.post(posts[1][0], content=posts[1][1]).status_code == 401
    unknown = client.post("/api/v1/integrations/lorawan", content=b"{}", headers=writer)
    assert (unknown.status_code, "unknown integration 'lorawan'" in unknown.text) == (400, True)


def test_integration_bodies_that_cannot_be_read_are_kept_as_dead_letters(client: TestClient, session: Session) -> None:
    writer = bearer(session, "gateway", ["readings:write"])
    bodies = [
        b'{"serial":"CW-1001","ts":"9999-12-31T23:59:59-12:00","value":"1"}',
        b'{"serial":"CW-1001","ts":"2026-02-25T10:00:00Z","value":"1e400000"}',
        b"[" * 100_000,
    ]
    for body in bodies:
        answer = client.post("/api/v1/integrations/platform", content=body, headers=writer)
        assert answer.status_code == 400, answer.text
    assert client.post("/api/v1/waterius", content=b"[" * 100_000).status_code == 400
    assert len(session.scalars(select(DeadLetter)).all()) == 4


def test_last_readings_of_a_two_zone_meter_are_per_zone(client: TestClient, session: Session) -> None:
    writer = bearer(session, "writer", ["readings:write"])
    reader = bearer(session, "reader", ["metering:read"])
    readings = [
        {"serial": "EL-1002", "taken_at": "2026-02-25", "values": {"t1": "1000", "t2": "400"}},
        {"serial": "EL-1002", "taken_at": "2026-03-25", "values": {"t1": "1100"}},
        {"serial": "EL-1002", "taken_at": "2026-03-26", "values": {"t1": "1101"}},
    ]
    assert client.post("/api/v1/readings", json={"readings": readings}, headers=writer).is_success
    meter = client.get("/api/v1/meters/EL-1002", headers=reader).json()
    assert [(r["zone"], r["value"]) for r in meter["last_readings"]] == [(1, "1101"), (2, "400")]


@pytest.mark.parametrize(
    ("reading", "complaint"),
    [
        ({"value": "1", "values": {"t1": "1"}}, "give value or values, exactly one"),
        ({}, "give value or values, exactly one"),
        ({"values": {"t4": "1"}}, "values are keyed t1, t2, t3"),
        ({"values": {}}, "values are keyed t1, t2, t3"),
        ({"value": "lots"}, "value must be a number, got 'lots'"),
        ({"value": True}, "value must be a number or a numeric string"),
        ({"values": {"t1": None}}, "values.t1 must be a number or a numeric string"),
        ({"value": "1", "taken_at": 20260226}, "taken_at must be an ISO date or time as a string"),
        ({"value": "1", "taken_at": "26.02.2026"}, "taken_at is not an ISO date or time"),
        ({"value": "1", "serial": 1001}, "serial must be a string"),
        ({"value": "1", "serial": " "}, "serial is empty"),
        ({"value": "1", "source": "x" * 41}, "source must be a string of at most 40 characters"),
    ],
)
def test_a_bad_reading_in_a_batch_is_named_by_its_position(
    client: TestClient, session: Session, reading: dict[str, object], complaint: str
) -> None:
    writer = bearer(session, "writer", ["readings:write"])
    good = {"serial": "CW-1001", "taken_at": "2026-02-25", "value": "1"}
    body = {"readings": [good, {"serial": "CW-1001", "taken_at": "2026-02-26", **reading}]}
    response = client.post("/api/v1/readings", json=body, headers=writer)
    assert response.status_code == 422
    assert f"reading 1 cannot be used: {complaint}" in response.json()["detail"]
    assert session.scalar(select(Reading)) is None, "a refused batch stores nothing"


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"{not json", "the body is not JSON"),
        (b'{"readings": []}', "at least one reading"),
        (b'[{"serial": "CW-1001"}]', "at least one reading"),
        (b'{"readings": [1]}', "reading 0 cannot be used: a reading must be a JSON object"),
    ],
)
def test_a_batch_body_of_the_wrong_shape_gets_422_with_the_reason(
    client: TestClient, session: Session, body: bytes, complaint: str
) -> None:
    writer = bearer(session, "writer", ["readings:write"])
    response = client.post("/api/v1/readings", content=body, headers=writer | {"Content-Type": "application/json"})
    assert response.status_code == 422
    assert complaint in response.json()["detail"]


def test_the_batch_body_is_documented_though_read_by_hand(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/api/v1/readings"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    item = schema["properties"]["readings"]["items"]
    assert set(item["properties"]) == {"serial", "taken_at", "value", "values", "source"}
    assert "$ref" not in str(schema)


def test_a_json_number_is_kept_exactly_and_a_time_without_offset_is_local(client: TestClient, session: Session) -> None:
    writer = bearer(session, "writer", ["readings:write"])
    body = {"readings": [{"serial": "CW-1001", "taken_at": "2026-02-25T12:00:00", "value": 12.3}]}
    answer = client.post("/api/v1/readings", json=body, headers=writer).json()
    assert answer["summary"] == {"accepted": 1}
    stored = session.scalars(select(Reading)).one()
    assert str(stored.value) == "12.3", "from the number's shortest text, not its binary float"
    assert stored.taken_at == datetime(2026, 2, 25, 9, tzinfo=UTC), "12:00 in Moscow"
