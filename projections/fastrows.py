"""What events write to the view, straight from their stored state, for rebuilds.

A rebuild maps every event of the ledger: JSON to a dict, instants to ``datetime`` and ids to
``UUID``, a domain event, and then the handler turns them back into text for the view. For the
events that make a ledger (credential reads above all; every kind but the rare ones: district
and person registrations, roles, erasures, and the controls and contact-data reads of issues 18
and 19), :class:`FastRows` gives the
handler's parameters from the stored bytes instead: ``msgspec`` checks the state against the
event class's fields as it reads it (:func:`projections.decoding.state_decoder`), a stored ISO
instant in the canonical UTC form is already the view's stamp, and an id becomes text once
(people's ids are remembered).

It gives parameters only for states that the usual path would certainly turn into those same
parameters: the event's current class version (nothing to upcast), exactly its fields with
exactly their JSON types, every id and instant valid, the library's transcodings, a known
district, and a class whose fields are still those this module was written for. Anything else
(an older version, an extra or missing field, a number where text was expected, an instant in
another form or zone, a malformed id, undecodable bytes) gives ``None``, and the caller maps the
event as usual, so the outcome (rows, or a recorded poison event) is the usual path's own. The
parameters are those of the handler's second half (``projections.projection``), which its first
half computes from the domain event.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final
from uuid import UUID

import msgspec
from eventsourcing.persistence import DatetimeAsISO, Mapper, Notification, UUIDAsHex
from eventsourcing.utils import resolve_topic

from events.domain import ChangeRequest, District, Incident, Person
from projections.decoding import FastJSONTranscoder, Tagged, state_decoder

__all__ = ["FastRows", "Params", "channel_text", "written_for"]

Params = tuple[Any, ...]
"""What :class:`FastRows` makes of an event: the parameters of its handler's second half."""

_DATETIME: Final = DatetimeAsISO.name
_UUID: Final = UUIDAsHex.name
# A stored instant that is already the view's stamp (UTC, fixed width), or is once ".000000"
# is added: what DatetimeAsISO writes for a UTC instant from year 1000 on. fromisoformat()
# still checks that it names a real instant (a month 13 must fail as on the usual path).
_CANONICAL_UTC: Final = re.compile(
    r"[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{6})?\+00:00"
)
# What UUIDAsHex writes: str(UUID(hex)) is then the hex digits with four dashes.
_HEX: Final = re.compile(r"[0-9a-f]{32}")
_PEOPLE_REMEMBERED: Final = 10_000

Build = Callable[["FastRows", Notification, Any, str], Params]


class FastRows:
    """Parameters of the events' handlers (all but a few kinds), from their stored states
    (module docstring)."""

    def __init__(self, codes: Mapping[int, str]) -> None:
        self._codes = codes
        self._topics: dict[str, _Known | None] = {}
        self._people: dict[str, str] = {}
        self._originators: dict[int, str] = {}

    @classmethod
    def for_mapper(cls, mapper: Mapper[UUID], codes: Mapping[int, str]) -> FastRows | None:
        """Parameters for events mapped by ``mapper``, if it maps them as this class assumes
        (the projections' JSON transcoder with the library's transcodings, no cipher, no
        compressor); else ``None``. ``codes``: district codes by their ids' integers."""
        transcoder: Any = mapper.transcoder
        if (
            mapper.cipher is not None
            or mapper.compressor is not None
            or type(transcoder) is not FastJSONTranscoder
            or type(transcoder.names.get(_DATETIME)) is not DatetimeAsISO
            or type(transcoder.names.get(_UUID)) is not UUIDAsHex
        ):
            return None
        return cls(codes)

    def params(self, notification: Notification) -> tuple[type[Any], Params] | None:
        """The event class of ``notification`` and its handler's parameters, or ``None``: not
        one of the events this class knows, or anything unusual about it."""
        topic = notification.topic
        known = self._topics.get(topic)
        if known is None:
            if topic in self._topics:
                return None
            known = self._learn(topic)
            if known is None:
                return None
        originator_id = notification.originator_id
        if type(originator_id) is not UUID:
            return None
        cls, decode, class_version, build, of_district = known
        district = ""
        if of_district:
            district = self._codes.get(originator_id.int, "")
            if not district:
                return None
        try:
            state = decode(notification.state)
            if state.class_version != class_version:
                return None
            return cls, build(self, notification, state, district)
        except (msgspec.DecodeError, ValueError, KeyError):
            return None

    def _learn(self, topic: str) -> _Known | None:
        known = None
        try:
            cls = resolve_topic(topic)
            if written_for(cls):
                decode, class_version = state_decoder(cls)
                _, build, of_district = _BUILDS[cls]
                known = (cls, decode, class_version, build, of_district)
        except Exception:  # noqa: S110 - an unknown topic: the usual path records it
            pass
        self._topics[topic] = known
        return known

    # -- values, as the handlers make them; ValueError (or KeyError) for anything unusual -----

    def instant(self, value: Tagged) -> str:
        """``stamp()`` of the instant, from its stored text."""
        text = value.data
        if value.type_ != _DATETIME or not _CANONICAL_UTC.fullmatch(text):
            raise ValueError(text)
        datetime.fromisoformat(text)
        return text if len(text) == 32 else f"{text[:19]}.000000+00:00"

    @staticmethod
    def check_instant(value: Tagged | None) -> None:
        """An instant the handler does not use, checked as the transcoder reads it."""
        if value is not None:
            if value.type_ != _DATETIME:
                raise ValueError(value.type_)
            datetime.fromisoformat(value.data)

    def originator(self, notification: Notification) -> str:
        """``str()`` of the event's originator id (a request, an incident, a person)."""
        originator_id: Any = notification.originator_id
        text = self._originators.get(originator_id.int)
        if text is None:
            if len(self._originators) >= _PEOPLE_REMEMBERED:
                self._originators.clear()
            text = self._originators[originator_id.int] = str(originator_id)
        return text

    def person(self, value: Tagged | None) -> str | None:
        """``str()`` of a person's id (``None`` stays ``None``): people come back often."""
        if value is None:
            return None
        text = self._people.get(value.data)
        if text is None:
            text = self.id(value)
            if len(self._people) >= _PEOPLE_REMEMBERED:
                self._people.clear()
            self._people[value.data] = text
        elif value.type_ != _UUID:
            raise ValueError(value.type_)
        return text

    @staticmethod
    def id(value: Tagged) -> str:
        """``str()`` of an id."""
        if value.type_ != _UUID:
            raise ValueError(value.type_)
        h = value.data
        if _HEX.fullmatch(h):
            return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        return str(UUID(h))

    @staticmethod
    def untagged(value: dict[str, Any] | None) -> dict[str, Any] | None:
        """A dict field as the transcoder reads it: not one shaped like a transcoded value."""
        if value is not None and len(value) == 2 and "_type_" in value and "_data_" in value:
            raise ValueError("a transcoded value")
        return value


def channel_text(payload: dict[str, str | None] | None) -> str | None:
    """An official channel as the view shows it (``kind reference (date)``)."""
    if not payload:
        return None
    text = f"{payload['kind']} {payload['reference']}"
    return f"{text} ({payload['date']})" if payload.get("date") else text


# -- one builder per event: the parameters its handler's first half computes from the domain
# -- event, in the same order; every field is checked, used or not ----------------------------


def _credential_read(rows: FastRows, n: Notification, s: Any, district: str) -> Params:
    at = rows.instant(s.timestamp)
    by = rows.person(s.by)
    return (
        n.id,
        at,
        district,
        s.account,
        s.kind,
        s.version,
        by,
        s.reader_role,
        s.purpose,
        s.device_id,
        int(s.registered_device),
        int(s.outside_working_hours),
    )


def _obligation_opened(rows: FastRows, n: Notification, s: Any, district: str) -> Params:
    rows.person(s.by)
    return (
        rows.id(s.obligation_id),
        n.id,
        district,
        s.account,
        s.cause,
        rows.person(s.outgoing_holder_id),
        rows.person(s.incoming_holder_id),
        rows.instant(s.timestamp),
        rows.instant(s.deadline),
    )


def _obligation_withdrawn(rows: FastRows, n: Notification, s: Any, district: str) -> Params:
    rows.person(s.by)
    return (rows.instant(s.timestamp), s.reason, rows.id(s.obligation_id))


def _rotation_started(rows: FastRows, n: Notification, s: Any, district: str) -> Params:
    return (s.version, rows.instant(s.timestamp), s.account, rows.person(s.by))


def _rotation_confirmed(rows: FastRows, n: Notification, s: Any, district: str) -> Params:
    if s.change_request_id is not None:
        rows.id(s.change_request_id)
    obligations = tuple([rows.id(obligation) for obligation in s.closed_obligation_ids])
    return (s.version, rows.instant(s.timestamp), s.account, rows.person(s.by), obligations)


def _rotation_abandoned(rows: FastRows, n: Notification, s: Any, district: str) -> Params:
    rows.check_instant(s.timestamp)
    rows.person(s.by)
    return (s.account,)


def _holder_changed(rows: FastRows, n: Notification, s: Any, district: str) -> Params:
    rows.person(s.previous_holder_id)
    rows.person(s.by)
    rows.untagged(s.versions_seen)
    return (rows.person(s.holder_id), rows.instant(s.timestamp), s.cause, district)


def _administrator_designated(rows: FastRows, n: Notification, s: Any, district: str) -> Params:
    rows.person(s.previous_id)
    rows.person(s.by)
    rows.untagged(s.channel)
    return (rows.person(s.person_id), rows.instant(s.timestamp), district)


def _district_only(rows: FastRows, n: Notification, s: Any, district: str) -> Params:
    """Designation ended, absence started or ended: the district is all the handler uses."""
    rows.check_instant(s.timestamp)
    for name in ("person_id", "substitute_id", "by"):
        rows.person(getattr(s, name, None))
    rows.untagged(getattr(s, "channel", None))
    return (district,)


def _absence_reported(rows: FastRows, n: Notification, s: Any, district: str) -> Params:
    rows.check_instant(s.timestamp)
    rows.check_instant(s.starts_at)
    rows.check_instant(s.ends_at)
    rows.person(s.administrator_id)
    rows.person(s.by)
    rows.untagged(s.channel)
    return (s.reason, rows.person(s.substitute_id), s.starts_on, s.ends_on, district)


def _account_registered(rows: FastRows, n: Notification, s: Any, district: str) -> Params:
    rows.person(s.by)
    return (
        s.account,
        district,
        s.platform,
        s.handle,
        s.email,
        int(s.public),
        int(s.direct_messages),
        json.dumps(list(s.violations)),
        int(s.existing),
        rows.instant(s.timestamp),
    )


def _account_status_recorded(rows: FastRows, n: Notification, s: Any, district: str) -> Params:
    rows.check_instant(s.timestamp)
    rows.person(s.by)
    return (int(s.public), int(s.direct_messages), json.dumps(list(s.violations)), s.account)


def _account_closed(rows: FastRows, n: Notification, s: Any, district: str) -> Params:
    rows.person(s.by)
    rows.untagged(s.channel)
    return (rows.instant(s.timestamp), s.account)


def _account_setting_changed(rows: FastRows, n: Notification, s: Any, district: str) -> Params:
    rows.check_instant(s.timestamp)
    rows.id(s.change_request_id)
    rows.person(s.by)
    return (s.setting, s.value, json.dumps(list(s.violations)), s.account)


def _read_voided(rows: FastRows, n: Notification, s: Any, district: str) -> Params:
    at = rows.instant(s.timestamp)
    return (n.id, at, district, s.account, s.kind, s.version, rows.person(s.by), s.reason)


def _totp_registered(rows: FastRows, n: Notification, s: Any, district: str) -> Params:
    rows.check_instant(s.timestamp)
    rows.person(s.by)
    return (s.account,)


def _device_registered(rows: FastRows, n: Notification, s: Any, district: str) -> Params:
    rows.person(s.by)
    return (rows.originator(n), s.device_id, rows.instant(s.timestamp))


def _request_filed(rows: FastRows, n: Notification, s: Any, district: str) -> Params:
    channel = s.channel
    rows.untagged(channel)
    return (
        rows.originator(n),
        n.id,
        s.district,
        s.account,
        s.field,
        s.detail,
        channel["kind"],
        channel["reference"],
        channel.get("date"),
        rows.instant(s.timestamp),
        rows.person(s.by),
    )


def _request_decided(status: str) -> Build:
    def build(rows: FastRows, n: Notification, s: Any, district: str) -> Params:
        return (status, rows.instant(s.timestamp), rows.person(s.by), s.reason, rows.originator(n))

    return build


def _request_applied(rows: FastRows, n: Notification, s: Any, district: str) -> Params:
    return (rows.instant(s.timestamp), rows.person(s.by), s.rotation_version, rows.originator(n))


def _incident_reported(rows: FastRows, n: Notification, s: Any, district: str) -> Params:
    return (
        rows.originator(n),
        n.id,
        s.district,
        s.account,
        s.incident_type,
        s.description,
        rows.instant(s.timestamp),
        rows.person(s.by),
        rows.instant(s.notify_by),
        rows.instant(s.detected_at),
    )


def _incident_notified(rows: FastRows, n: Notification, s: Any, district: str) -> Params:
    rows.person(s.by)
    channel = channel_text(rows.untagged(s.channel))
    return (rows.instant(s.timestamp), int(s.on_time), channel, rows.originator(n))


def _incident_contained(rows: FastRows, n: Notification, s: Any, district: str) -> Params:
    rows.check_instant(s.rotation_confirmed_at)
    rows.person(s.by)
    return (rows.instant(s.timestamp), s.rotation_version, rows.originator(n))


def _incident_closed(rows: FastRows, n: Notification, s: Any, district: str) -> Params:
    rows.person(s.by)
    return (rows.instant(s.timestamp), rows.originator(n))


_Known = tuple[type[Any], Callable[[bytes], Any], int, Build, bool]


def _fields(**types: str) -> dict[str, str]:
    return {"originator_id": "UUID", "originator_version": "int", "timestamp": "datetime", **types}


_CHANGE = _fields(reason="str | None", by="UUID")
_INCIDENT_STEP = {"detail": "str", "by": "UUID"}

# Each builder, with the fields (declared types) it was written for, and whether the event's
# originator is a district: a class with other fields is mapped as usual
# (tests/unit/projections/test_fastrows.py fails, to have the builder brought up to date).
_BUILDS: Final[dict[type[Any], tuple[dict[str, str], Build, bool]]] = {
    District.CredentialRead: (
        _fields(
            account="str",
            kind="str",
            version="int | None",
            reader_role="str",
            purpose="str",
            device_id="str | None",
            registered_device="bool",
            outside_working_hours="bool",
            by="UUID",
        ),
        _credential_read,
        True,
    ),
    District.RotationObligationOpened: (
        _fields(
            obligation_id="UUID",
            account="str",
            cause="str",
            outgoing_holder_id="UUID | None",
            incoming_holder_id="UUID | None",
            deadline="datetime",
            by="UUID | None",
        ),
        _obligation_opened,
        True,
    ),
    District.RotationObligationWithdrawn: (
        _fields(obligation_id="UUID", account="str", reason="str", by="UUID"),
        _obligation_withdrawn,
        True,
    ),
    District.RotationStarted: (
        _fields(account="str", version="int", fingerprint="str", rotation_id="str", by="UUID"),
        _rotation_started,
        True,
    ),
    District.RotationConfirmed: (
        _fields(
            account="str",
            version="int",
            fingerprint="str",
            previous_version="int | None",
            closed_obligation_ids="list[UUID]",
            change_request_id="UUID | None",
            by="UUID",
        ),
        _rotation_confirmed,
        True,
    ),
    District.RotationAbandoned: (
        _fields(account="str", version="int", reason="str | None", by="UUID"),
        _rotation_abandoned,
        True,
    ),
    District.CredentialHolderChanged: (
        _fields(
            previous_holder_id="UUID | None",
            holder_id="UUID | None",
            cause="str",
            versions_seen="dict[str, list[int]]",
            by="UUID | None",
        ),
        _holder_changed,
        True,
    ),
    District.AdministratorDesignated: (
        _fields(person_id="UUID", previous_id="UUID | None", channel="ChannelPayload", by="UUID"),
        _administrator_designated,
        True,
    ),
    District.DesignationEnded: (
        _fields(person_id="UUID", reason="str", channel="ChannelPayload", by="UUID"),
        _district_only,
        True,
    ),
    District.AbsenceReported: (
        _fields(
            reason="str",
            administrator_id="UUID",
            substitute_id="UUID",
            starts_on="str",
            ends_on="str | None",
            starts_at="datetime",
            ends_at="datetime | None",
            channel="ChannelPayload",
            by="UUID",
        ),
        _absence_reported,
        True,
    ),
    District.AbsenceStarted: (
        _fields(substitute_id="UUID", by="UUID | None"),
        _district_only,
        True,
    ),
    District.AbsenceEnded: (
        _fields(kind="str", channel="ChannelPayload | None", by="UUID | None"),
        _district_only,
        True,
    ),
    District.AccountRegistered: (
        _fields(
            account="str",
            platform="str",
            handle="str",
            email="str",
            phone="str | None",
            public="bool",
            direct_messages="bool",
            violations="list[str]",
            existing="bool",
            by="UUID",
        ),
        _account_registered,
        True,
    ),
    District.AccountStatusRecorded: (
        _fields(
            account="str",
            public="bool",
            direct_messages="bool",
            phone="str | None",  # version 2; the phone is not projected
            violations="list[str]",
            by="UUID",
        ),
        _account_status_recorded,
        True,
    ),
    District.AccountClosed: (
        _fields(account="str", channel="ChannelPayload", by="UUID"),
        _account_closed,
        True,
    ),
    District.AccountSettingChanged: (
        _fields(
            account="str",
            setting="str",
            value="str",
            violations="list[str]",
            change_request_id="UUID",
            by="UUID",
        ),
        _account_setting_changed,
        True,
    ),
    District.ReadVoided: (
        _fields(account="str", kind="str", version="int | None", reason="str", by="UUID"),
        _read_voided,
        True,
    ),
    District.TotpRegistered: (
        _fields(account="str", replaced="bool", seed_fingerprint="str", by="UUID"),
        _totp_registered,
        True,
    ),
    Person.DeviceRegistered: (
        _fields(device_id="str", by="UUID"),
        _device_registered,
        False,
    ),
    ChangeRequest.Filed: (
        _fields(
            originator_topic="str",
            district="str",
            account="str",
            field="str",
            detail="str",
            channel="ChannelPayload",
            by="UUID",
        ),
        _request_filed,
        False,
    ),
    ChangeRequest.Approved: (_CHANGE, _request_decided("aprobada"), False),
    ChangeRequest.Rejected: (_CHANGE, _request_decided("rechazada"), False),
    ChangeRequest.Applied: (
        _fields(rotation_version="int | None", by="UUID"),
        _request_applied,
        False,
    ),
    Incident.Reported: (  # version 2 (issue 19): also its step «detected»
        _fields(
            originator_topic="str",
            district="str",
            account="str",
            incident_type="str",
            description="str",
            notify_by="datetime",
            detected_at="datetime",
            by="UUID",
        ),
        _incident_reported,
        False,
    ),
    Incident.Notified: (
        _fields(channel="ChannelPayload", on_time="bool", by="UUID"),
        _incident_notified,
        False,
    ),
    Incident.Contained: (
        _fields(detail="str", rotation_version="int", rotation_confirmed_at="datetime", by="UUID"),
        _incident_contained,
        False,
    ),
    Incident.Closed: (_fields(**_INCIDENT_STEP), _incident_closed, False),
}


def written_for(cls: type[Any]) -> bool:
    """Whether ``cls`` has a builder here and still the fields it was written for."""
    known = _BUILDS.get(cls)
    return known is not None and {f.name: f.type for f in dataclasses.fields(cls)} == known[0]
