from zhkh.alarms.models import AlarmKind
from zhkh.notify.templates import ALARM_TEXTS, render_alarm


def test_every_alarm_kind_has_russian_and_english_texts() -> None:
    assert {key.split("/")[0] for key in ALARM_TEXTS} == {kind.value for kind in AlarmKind}
    assert all(set(texts) == {"ru", "en"} for texts in ALARM_TEXTS.values())


def test_render_in_russian_by_default_and_english_on_request() -> None:
    values = {"meter": "CW-1", "address": "ул. Садовая, д. 12", "hours": 24}
    subject, body = render_alarm("leak", "ru", values)
    assert subject == "Возможная протечка: счётчик CW-1"
    assert "ул. Садовая, д. 12" in body
    assert "24 ч" in body
    assert render_alarm("leak", "en", values)[0] == "Possible leak: meter CW-1"


def test_a_missing_value_is_a_dash_not_an_error() -> None:
    subject, body = render_alarm("low_battery", "en", {"device": "70b3"})
    assert subject == "Low battery on device 70b3"
    assert "meter —" in body


def test_a_leak_the_device_reports_names_the_device_and_no_hours() -> None:
    values = {"meter": "CW-1", "address": "ул. Садовая, д. 12", "device": "70b3", "reported_by": "device"}
    subject, body = render_alarm("leak", "ru", values)
    assert subject == "Возможная протечка: счётчик CW-1"
    assert body.startswith("Устройство 70b3 на счётчике CW-1 (ул. Садовая, д. 12) сообщает о протечке.")
    assert "—" not in body
