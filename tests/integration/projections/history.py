"""Long random histories of several districts, made by the domain model itself.

The cast and the conventions come from the domain's property-test world
(:mod:`tests.unit.domain.domain_world`: sealed personal data, the default policy, T0). A seeded
random walk issues commands — mostly credential reads, then rotations, designations, absences,
change requests, incidents, account changes, an erasure — at random instants, working hours or
not; the domain refuses what the rules forbid and only what it accepts is saved, through the
``save`` callback (an eventsourcing application's ``save``, or a bench's fast writer).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from eventsourcing.domain import Aggregate

from events.domain import (
    ChangeRequest,
    District,
    DomainError,
    Incident,
    OfficialChannel,
    Person,
)
from tests.unit.domain.domain_world import FINGERPRINT, POLICY, T0, new_person, sealed

Save = Callable[[Sequence[Aggregate]], None]

OFICIO = OfficialChannel.oficio("IECM/UTCSyD/0042/2025")
CORREO = OfficialChannel.email("titular@iecm.mx")
NOTA = OfficialChannel.memorandum("MEM/SE/12")


class DistrictCast:
    """One district and its people."""

    def __init__(self, code: str, titular: Person, admins: list[Person]) -> None:
        self.code = code
        self.titular = titular
        self.admins = admins
        self.district: District | None = None
        self.requests: list[ChangeRequest] = []
        self.incidents: list[Incident] = []


class RandomHistory:
    """A seeded random walk over ``districts``; :meth:`run` issues ``steps`` commands."""

    def __init__(
        self,
        save: Save,
        *,
        seed: int = 7,
        districts: Sequence[str] = ("DD01", "DD05", "DD12"),
        start: datetime = T0,
        reads_weight: int = 40,
    ) -> None:
        self.rng = random.Random(seed)
        self.save = save
        self.now = start
        self.reads_weight = reads_weight
        self.accepted = 0
        self.refused = 0
        self.erased = 0
        self.coadmin = Person.bootstrap("utcsyd", **sealed("utcsyd"), at=self.now)
        self.coadmin2 = new_person("utcsyd2", by=self.coadmin, role="coadministrador", at=self.now)
        self.secretaria = new_person("secretaria", by=self.coadmin, role="secretaria", at=self.now)
        self.floater = new_person("flotante", by=self.coadmin, role="administrador", at=self.now)
        self.casts: list[DistrictCast] = []
        people: list[Person] = [self.coadmin, self.coadmin2, self.secretaria, self.floater]
        for code in districts:
            n = code[2:]
            titular = new_person(
                f"titular{n}", by=self.coadmin, role="titular", district=code, at=self.now
            )
            admins = [
                new_person(
                    f"{name}{n}", by=self.coadmin, role="administrador", district=code, at=self.now
                )
                for name in ("ana", "beto", "dora")
            ]
            for admin in admins:
                admin.register_device(f"pc-{admin_name(admin, n)}", by=self.coadmin, at=self.now)
            self.casts.append(DistrictCast(code, titular, admins))
            people += [titular, *admins]
        self.people = people
        self.save(people)
        for cast in self.casts:
            self._open(cast)

    # -- helpers ------------------------------------------------------------------------------

    def _open(self, cast: DistrictCast) -> None:
        district = District.register(cast.code, by=self.coadmin, at=self.now)
        district.appoint_titular(cast.titular, by=self.coadmin, at=self.now)
        for platform, handle in (("x", f"{cast.code}IECM"), ("facebook", f"iecm.{cast.code}")):
            district.register_account(
                f"{cast.code}-{platform}",
                handle=handle,
                email=f"{cast.code.lower()}.{platform}@iecm.mx",
                by=self.coadmin,
                at=self.now,
            )
        district.designate(
            cast.admins[0], by=cast.titular, channel=OFICIO, policy=POLICY, at=self.now
        )
        for account in district.open_accounts():
            district.start_rotation(
                account.account_id, version=1, fingerprint=FINGERPRINT, by=self.coadmin, at=self.now
            )
            district.confirm_rotation(account.account_id, version=1, by=self.coadmin, at=self.now)
        cast.district = district
        self.save([district])

    def _try(self, command: Callable[[], object], *aggregates: Aggregate) -> bool:
        try:
            command()
        except DomainError:
            self.refused += 1
            return False
        self.accepted += 1
        self.save(list(aggregates))
        return True

    def _tick(self) -> None:
        roll = self.rng.random()
        if roll < 0.75:
            step = timedelta(minutes=self.rng.randint(1, 90))
        elif roll < 0.95:
            step = timedelta(hours=self.rng.randint(2, 14))
        else:
            step = timedelta(days=self.rng.randint(1, 3))
        self.now += step

    def _coadmin(self) -> Person:
        return self.coadmin if self.rng.random() < 0.7 else self.coadmin2

    def _by_id(self, person_id: Any) -> Person | None:
        return next((p for p in self.people if p.id == person_id), None)

    # -- the walk -----------------------------------------------------------------------------

    def run(self, steps: int) -> None:
        actions: list[tuple[int, Callable[[DistrictCast, District], None]]] = [
            (self.reads_weight, self._read),
            (10, self._rotation),
            (3, self._designate),
            (1, self._end_designation),
            (2, self._absence),
            (1, self._end_absence),
            (3, self._advance),
            (1, self._register_account),
            (1, self._close_account),
            (1, self._account_status),
            (1, self._totp),
            (5, self._change_request),
            (4, self._incident),
            (1, self._device),
        ]
        weights = [w for w, _ in actions]
        for _ in range(steps):
            self._tick()
            cast = self.rng.choice(self.casts)
            assert cast.district is not None
            action = self.rng.choices(actions, weights)[0][1]
            action(cast, cast.district)
            if self.erased < 1 and self.rng.random() < 0.002:
                self.erase_someone()

    def _account(self, district: District) -> str | None:
        accounts = district.open_accounts()
        return self.rng.choice(accounts).account_id if accounts else None

    def _read(self, cast: DistrictCast, district: District) -> None:
        account = self._account(district)
        if account is None:
            return
        roll = self.rng.random()
        if roll < 0.7:
            reader = self._by_id(district.holder_at(self.now)) or cast.admins[0]
        elif roll < 0.9:
            reader = self._coadmin()
        else:
            reader = self.rng.choice([cast.titular, *cast.admins, self.secretaria])
        current = district.accounts[account]
        if current.staged_version is not None and self.rng.random() < 0.3:
            version = current.staged_version
        else:
            version = current.current_version or 1
        devices = sorted(reader.devices)
        device = self.rng.choice(devices) if devices and self.rng.random() < 0.85 else None
        if device is None and self.rng.random() < 0.5:
            device = "laptop-personal"
        kind = self.rng.random()
        if kind < 0.1:
            self._try(
                lambda: district.record_code_read(
                    account,
                    reader=reader,
                    purpose="verificación en dos pasos",
                    device_id=device,
                    policy=POLICY,
                    at=self.now,
                ),
                district,
            )
            return
        read = self._try(
            lambda: district.record_read(
                account,
                reader=reader,
                version=version,
                purpose="publicación institucional",
                device_id=device,
                policy=POLICY,
                at=self.now,
            ),
            district,
        )
        if read and self.rng.random() < 0.03:  # its wrapped read then failed
            self._try(
                lambda: district.void_read(
                    account,
                    reader=reader,
                    version=version,
                    reason="VaultUnavailableError",
                    at=self.now,
                ),
                district,
            )

    def _rotation(self, cast: DistrictCast, district: District) -> None:
        account = self._account(district)
        if account is None:
            return
        current = district.accounts[account]
        by = self._coadmin()
        if current.staged_version is None:
            version = current.highest_version + 1
            self._try(
                lambda: district.start_rotation(
                    account, version=version, fingerprint=FINGERPRINT, by=by, at=self.now
                ),
                district,
            )
        elif self.rng.random() < 0.85:
            staged = current.staged_version
            self._try(
                lambda: district.confirm_rotation(account, version=staged, by=by, at=self.now),
                district,
            )
        else:
            staged = current.staged_version
            self._try(
                lambda: district.abandon_rotation(
                    account, version=staged, by=by, reason="no se aplicó", at=self.now
                ),
                district,
            )

    def _designate(self, cast: DistrictCast, district: District) -> None:
        person = self.rng.choice([*cast.admins, self.floater])
        by = cast.titular if self.rng.random() < 0.8 else self.coadmin
        self._try(
            lambda: district.designate(person, by=by, channel=OFICIO, policy=POLICY, at=self.now),
            district,
        )

    def _end_designation(self, cast: DistrictCast, district: District) -> None:
        reason = self.rng.choice(["baja", "promocion", "cambio_adscripcion"])
        self._try(
            lambda: district.end_designation(
                reason, by=cast.titular, channel=CORREO, policy=POLICY, at=self.now
            ),
            district,
        )

    def _absence(self, cast: DistrictCast, district: District) -> None:
        substitute = self.rng.choice([*cast.admins, self.floater])
        today = POLICY.local_date(self.now)
        starts = today + timedelta(days=self.rng.randint(0, 2))
        ends: date | None = starts + timedelta(days=self.rng.randint(1, 5))
        if self.rng.random() < 0.2:
            ends = None
        reason = self.rng.choice(["vacaciones", "salud", "otro"])
        self._try(
            lambda: district.report_absence(
                reason,
                substitute=substitute,
                starts_on=starts,
                ends_on=ends,
                by=cast.titular,
                channel=OFICIO,
                policy=POLICY,
                at=self.now,
            ),
            district,
        )

    def _end_absence(self, cast: DistrictCast, district: District) -> None:
        self._try(
            lambda: district.end_absence(by=cast.titular, policy=POLICY, at=self.now), district
        )

    def _advance(self, cast: DistrictCast, district: District) -> None:
        before = len(district.pending_events)
        district.advance(policy=POLICY, at=self.now)
        if len(district.pending_events) > before:
            self.accepted += 1
            self.save([district])

    def _register_account(self, cast: DistrictCast, district: District) -> None:
        platform = self.rng.choice(["instagram", "tiktok", "youtube", "x"])
        compliant = self.rng.random() < 0.7
        self._try(
            lambda: district.register_account(
                f"{cast.code}-{platform}",
                handle=f"{cast.code}IECM" if compliant else "cuenta_vieja",
                email=f"{cast.code.lower()}@iecm.mx" if compliant else "dd@gmail.com",
                public=compliant or self.rng.random() < 0.5,
                existing=not compliant,
                by=self.coadmin,
                at=self.now,
            ),
            district,
        )

    def _close_account(self, cast: DistrictCast, district: District) -> None:
        account = self._account(district)
        if account is None or len(district.open_accounts()) <= 1:
            return
        self._try(
            lambda: district.close_account(account, by=self.coadmin, channel=NOTA, at=self.now),
            district,
        )

    def _account_status(self, cast: DistrictCast, district: District) -> None:
        account = self._account(district)
        if account is None:
            return
        public = self.rng.random() < 0.8
        dms = self.rng.random() < 0.8
        self._try(
            lambda: district.record_account_status(
                account, public=public, direct_messages=dms, by=self.coadmin, at=self.now
            ),
            district,
        )

    def _totp(self, cast: DistrictCast, district: District) -> None:
        account = self._account(district)
        if account is None:
            return
        self._try(lambda: district.register_totp(account, by=self.coadmin, at=self.now), district)

    def _change_request(self, cast: DistrictCast, district: District) -> None:
        pending = [r for r in cast.requests if r.status in ("solicitada", "aprobada")]
        if not pending or self.rng.random() < 0.3:
            account = self._account(district)
            if account is None:
                return
            field = self.rng.choice(["correo", "telefono", "usuario", "contrasena", "otro"])
            filer = cast.titular if self.rng.random() < 0.5 else cast.admins[0]
            try:
                request = ChangeRequest.file(
                    district,
                    account,
                    field,
                    "cambio solicitado por oficio",
                    channel=CORREO,
                    by=filer,
                    at=self.now,
                )
            except DomainError:
                self.refused += 1
                return
            cast.requests.append(request)
            self.accepted += 1
            self.save([request])
            return
        request = self.rng.choice(pending)
        if request.status == "solicitada":
            if self.rng.random() < 0.75:
                self._try(lambda: request.approve(by=self.coadmin, at=self.now), request)
            else:
                self._try(
                    lambda: request.reject(by=self.coadmin, reason="sin sustento", at=self.now),
                    request,
                )
            return
        self._apply(district, request)

    def _apply(self, district: District, request: ChangeRequest) -> None:
        def apply() -> None:
            if request.field in ("correo", "usuario", "telefono"):
                value = {
                    "correo": f"{district.code.lower()}.nuevo@iecm.mx",
                    "usuario": f"{district.code}IECM",
                    "telefono": "5551234567",
                }[request.field]
                district.change_account_setting(request, value, by=self.coadmin, at=self.now)
            elif request.field == "contrasena":
                current = district.account(request.account)
                if current.staged_version is None:
                    district.start_rotation(
                        request.account,
                        version=current.highest_version + 1,
                        fingerprint=FINGERPRINT,
                        by=self.coadmin,
                        at=self.now,
                    )
                staged = district.account(request.account).staged_version
                assert staged is not None
                district.confirm_rotation(
                    request.account,
                    version=staged,
                    by=self.coadmin,
                    at=self.now,
                    change_request=request,
                )
            request.apply(district, by=self.coadmin, at=self.now)

        self._try(apply, district, request)

    def _incident(self, cast: DistrictCast, district: District) -> None:
        live = [i for i in cast.incidents if i.status != "cerrado"]
        if not live or self.rng.random() < 0.25:
            account = self._account(district)
            if account is None:
                return
            reporter = self.rng.choice([cast.titular, cast.admins[0], self.coadmin])
            kind = self.rng.choice(["intervencion", "operacion_no_autorizada"])
            try:
                incident = Incident.report(
                    district,
                    account,
                    kind,
                    "publicaciones ajenas a la institución",
                    by=reporter,
                    policy=POLICY,
                    at=self.now,
                )
            except DomainError:
                self.refused += 1
                return
            cast.incidents.append(incident)
            self.accepted += 1
            self.save([incident])
            return
        incident = self.rng.choice(live)
        if incident.status == "reportado":
            self._try(lambda: incident.notify(channel=NOTA, by=self.coadmin, at=self.now), incident)
        elif incident.status == "notificado":
            self._try(
                lambda: incident.contain(
                    district, "contraseña rotada", by=self.coadmin, at=self.now
                ),
                incident,
            )
        else:
            self._try(lambda: incident.close("atendido", by=self.coadmin, at=self.now), incident)

    def _device(self, cast: DistrictCast, district: District) -> None:
        person = self.rng.choice(cast.admins)
        device = f"pc-{cast.code.lower()}-{self.rng.randint(2, 9)}"
        self._try(lambda: person.register_device(device, by=self.coadmin, at=self.now), person)

    def erase_someone(self) -> bool:
        """9.XX: someone who left is erased (roles revoked first): the first administrator, in
        random order, who holds nothing now."""
        candidates = [a for cast in self.casts for a in cast.admins[1:] if not a.erased]
        self.rng.shuffle(candidates)
        for person in candidates:
            if any(self._involved(cast, person) for cast in self.casts):
                continue

            def erase(person: Person = person) -> None:
                for role in list(person.roles):
                    person.revoke_role(role, by=self.coadmin, at=self.now)
                person.erase_personal_data(by=self.coadmin, at=self.now)

            if self._try(erase, person):
                self.erased += 1
                return True
        return False

    def _involved(self, cast: DistrictCast, person: Person) -> bool:
        district = cast.district
        assert district is not None
        administrator = district.administrator
        absence = district.absence
        return (
            (administrator is not None and administrator.person_id == person.id)
            or district.holder_at(self.now) == person.id
            or (absence is not None and absence.substitute_id == person.id)
        )


def admin_name(person: Person, n: str) -> str:
    """A device name per administrator (stable across runs)."""
    return f"{str(person.id)[:8]}-{n}"
