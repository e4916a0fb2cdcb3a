"""The deadlines and working hours the guidelines leave open, as configuration.

The guidelines say *when* things must happen only loosely: the password change after a change of
administrator (6.X) has no deadline, "inmediatamente" (8.C, 9.XVIII) has no number, and "horas y
días hábiles" (8.A) no hours. :class:`Policy` fixes them, with these defaults:

- rotation deadline: the end (24:00, Mexico City) of the next business day after the change;
- notification deadline: one hour after the report, any hour of any day;
- working hours: Monday to Friday, 09:00–18:00 Mexico City, except Mexican public holidays
  (the ``holidays`` package, country ``MX``) and any extra non-working days configured.

A TOML file (``CUSTODIA_POLITICA``) may override them; tables this module does not know (for
example the custody layer's password rules) are left to their owners::

    zona_horaria = "America/Mexico_City"

    [plazos]
    rotacion_dias_habiles = 1      # 0: the end of the same business day
    notificacion_minutos = 60
    antiguedad_maxima_dias = 180   # a current password older than this is rotated (0: at once)

    [horario]
    dias = ["lunes", "martes", "miercoles", "jueves", "viernes"]
    inicio = "09:00"
    fin = "18:00"

    [calendario]
    pais_feriados = "MX"           # "" for none
    dias_inhabiles = ["2025-12-24", "2025-12-31"]

    [equipos]
    exigir_registrado = false      # true: a read from an unregistered device is refused (8.B)

    [cuentas]
    prefijos_telefono = ["+52 55 5483"]  # 11.1.a: the institution's numbering; [] (default):
                                         # only a missing phone is a violation

Authorized other hours (8.A, second half) and the IECM's own non-working days are not in this
file: they are recorded in the ledger (``events.domain.controls``) and merged in with
:meth:`Policy.with_calendar`.
"""

from __future__ import annotations

import tomllib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from events.domain.clock import as_utc
from events.domain.values import phone_prefix_digits
from events.errors import ConfigurationError

__all__ = ["WEEKDAY_NAMES", "Policy", "SpecialHours"]

# Monday is 0, as in date.weekday().
WEEKDAY_NAMES: Final = ("lunes", "martes", "miercoles", "jueves", "viernes", "sabado", "domingo")
_MAX_BUSINESS_DAYS: Final = 30
_MAX_PASSWORD_AGE_DAYS: Final = 3650


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=256)
def _public_holidays(country: str, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, years=year))


@dataclass(frozen=True)
class SpecialHours:
    """8.A: other hours authorized "por necesidades del servicio" (an electoral process, the
    election night): every day from ``starts_on`` to ``ends_on`` (inclusive, local), between
    ``start`` and ``end`` (local), or the whole day when they are None. ``end`` before
    ``start`` runs past midnight into the next day."""

    starts_on: date
    ends_on: date
    start: time | None = None
    end: time | None = None

    def covers(self, local: datetime) -> bool:
        day, clock = local.date(), local.time().replace(tzinfo=None)
        if self.start is None or self.end is None:
            return self.starts_on <= day <= self.ends_on
        if self.start < self.end:
            return self.starts_on <= day <= self.ends_on and self.start <= clock < self.end
        # Overnight: the evening of a day in the period, or the early hours after it.
        evening = self.starts_on <= day <= self.ends_on and clock >= self.start
        previous = day - timedelta(days=1)
        return evening or (self.starts_on <= previous <= self.ends_on and clock < self.end)


@dataclass(frozen=True)
class Policy:
    """Deadlines, working hours and the business-day calendar. Immutable; validated on creation
    (a bad value raises :class:`~events.errors.ConfigurationError` naming the TOML key)."""

    timezone: str = "America/Mexico_City"
    rotation_business_days: int = 1
    notification_window: timedelta = timedelta(hours=1)
    working_days: frozenset[int] = frozenset(range(5))
    working_hours_start: time = time(9, 0)
    working_hours_end: time = time(18, 0)
    holiday_country: str | None = "MX"
    extra_non_working_days: frozenset[date] = field(default_factory=frozenset)
    # A current password older than this opens a rotation obligation.
    max_password_age_days: int = 180
    # 8.B: refuse (rather than only flag) a read from a device not registered for the district.
    require_registered_device: bool = False
    # 8.A: authorized other hours, from the ledger (see :meth:`with_calendar`).
    special_hours: tuple[SpecialHours, ...] = ()
    # 11.1.a: the prefixes of the institution's phone numbers (empty: not judged).
    institutional_phone_prefixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        try:
            _zone(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ConfigurationError("zona_horaria", "zona horaria desconocida") from None
        if (
            type(self.rotation_business_days) is not int
            or not 0 <= self.rotation_business_days <= _MAX_BUSINESS_DAYS
        ):
            raise ConfigurationError(
                "plazos.rotacion_dias_habiles", f"debe ser un entero de 0 a {_MAX_BUSINESS_DAYS}"
            )
        if not timedelta(0) < self.notification_window <= timedelta(days=7):
            raise ConfigurationError(
                "plazos.notificacion_minutos", "debe ser mayor que 0 y de a lo más 7 días"
            )
        if not self.working_days or not self.working_days <= frozenset(range(7)):
            raise ConfigurationError("horario.dias", "debe nombrar al menos un día de la semana")
        if self.working_hours_start.tzinfo or self.working_hours_end.tzinfo:
            raise ConfigurationError("horario.inicio", "las horas son locales, sin zona")
        if not self.working_hours_start < self.working_hours_end:
            raise ConfigurationError("horario.fin", "debe ser posterior a horario.inicio")
        if self.holiday_country is not None and (
            self.holiday_country not in holidays.list_supported_countries()
        ):
            raise ConfigurationError("calendario.pais_feriados", "país no soportado")
        if (
            type(self.max_password_age_days) is not int
            or not 0 <= self.max_password_age_days <= _MAX_PASSWORD_AGE_DAYS
        ):
            raise ConfigurationError(
                "plazos.antiguedad_maxima_dias",
                f"debe ser un entero de 0 a {_MAX_PASSWORD_AGE_DAYS}",
            )
        if type(self.require_registered_device) is not bool:
            raise ConfigurationError("equipos.exigir_registrado", "debe ser true o false")
        for prefix in self.institutional_phone_prefixes:
            if not 2 <= len(phone_prefix_digits(prefix)) <= 15:
                raise ConfigurationError(
                    "cuentas.prefijos_telefono", "cada prefijo debe tener de 2 a 15 dígitos"
                )

    # --- time zone -------------------------------------------------------------------------

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.timezone)

    def local(self, at: datetime) -> datetime:
        """``at`` in the policy's time zone (Mexico City by default)."""
        return as_utc(at).astimezone(self.zone)

    def local_date(self, at: datetime) -> date:
        return self.local(at).date()

    def start_of_day(self, day: date) -> datetime:
        """00:00 local of ``day``, in UTC."""
        return datetime.combine(day, time(0), tzinfo=self.zone).astimezone(UTC)

    # --- calendar --------------------------------------------------------------------------

    def is_holiday(self, day: date) -> bool:
        """A public holiday of the configured country, or an extra non-working day."""
        if day in self.extra_non_working_days:
            return True
        return self.holiday_country is not None and day in _public_holidays(
            self.holiday_country, day.year
        )

    def is_business_day(self, day: date) -> bool:
        return day.weekday() in self.working_days and not self.is_holiday(day)

    def is_working_time(self, at: datetime) -> bool:
        """8.A: within working hours of a business day, or within authorized other hours."""
        local = self.local(at)
        if any(window.covers(local) for window in self.special_hours):
            return True
        return (
            self.is_business_day(local.date())
            and self.working_hours_start <= local.time().replace(tzinfo=None)
            and local.time().replace(tzinfo=None) < self.working_hours_end
        )

    def is_outside_working_hours(self, at: datetime) -> bool:
        return not self.is_working_time(at)

    # --- deadlines -------------------------------------------------------------------------

    def rotation_deadline(self, opened_at: datetime) -> datetime:
        """6.X: when the password change after a change of holder must be confirmed.

        The end (24:00 local) of the N-th business day after the day of ``opened_at``; with N = 0,
        the end of that day if it is a business day, else of the next business day.
        """
        day = self.local_date(opened_at)
        if self.rotation_business_days == 0:
            while not self.is_business_day(day):
                day += timedelta(days=1)
        else:
            remaining = self.rotation_business_days
            while remaining:
                day += timedelta(days=1)
                if self.is_business_day(day):
                    remaining -= 1
        return self.start_of_day(day + timedelta(days=1))

    def notification_deadline(self, reported_at: datetime) -> datetime:
        """8.C, 9.XVIII: by when UTCSyD must notify the Secretaría Ejecutiva ("inmediatamente")."""
        return as_utc(reported_at, "reported_at") + self.notification_window

    @property
    def max_password_age(self) -> timedelta:
        return timedelta(days=self.max_password_age_days)

    def with_calendar(
        self, non_working_days: Iterable[date], special_hours: Iterable[SpecialHours]
    ) -> Policy:
        """This policy plus the non-working days and authorized hours the ledger records."""
        return replace(
            self,
            extra_non_working_days=self.extra_non_working_days | frozenset(non_working_days),
            special_hours=self.special_hours + tuple(special_hours),
        )

    def settings(self) -> dict[str, Any]:
        """The file's settings as the ledger records them (TOML keys; JSON-able): what a
        report computed later needs to know was in force. The ledger's own calendar entries
        (:meth:`with_calendar`) are recorded by their own events, not here."""
        return {
            "zona_horaria": self.timezone,
            "plazos": {
                "rotacion_dias_habiles": self.rotation_business_days,
                "notificacion_minutos": int(self.notification_window.total_seconds() // 60),
                "antiguedad_maxima_dias": self.max_password_age_days,
            },
            "horario": {
                "dias": [WEEKDAY_NAMES[d] for d in sorted(self.working_days)],
                "inicio": self.working_hours_start.strftime("%H:%M"),
                "fin": self.working_hours_end.strftime("%H:%M"),
            },
            "calendario": {
                "pais_feriados": self.holiday_country or "",
                "dias_inhabiles": sorted(d.isoformat() for d in self.extra_non_working_days),
            },
            "equipos": {"exigir_registrado": self.require_registered_device},
            # Only when configured: a policy recorded before this key existed stays the same.
            **(
                {"cuentas": {"prefijos_telefono": list(self.institutional_phone_prefixes)}}
                if self.institutional_phone_prefixes
                else {}
            ),
        }

    # --- loading ---------------------------------------------------------------------------

    @classmethod
    def from_toml(cls, path: str | Path) -> Policy:
        """Reads a policy file; missing keys keep their defaults."""
        try:
            with Path(path).open("rb") as handle:
                data = tomllib.load(handle)
        except OSError as error:
            raise ConfigurationError(str(path), f"no se puede leer: {error.strerror}") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigurationError(str(path), f"TOML inválido: {error}") from None
        return cls.from_mapping(data)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Policy:
        """Builds a policy from the parsed TOML document (see the module docstring)."""
        kwargs: dict[str, Any] = {}
        tables = {"plazos", "horario", "calendario", "equipos", "cuentas"}
        for key, value in data.items():
            if key == "zona_horaria":
                kwargs["timezone"] = _string(key, value)
            elif key in tables:
                if not isinstance(value, Mapping):
                    raise ConfigurationError(key, "debe ser una tabla")
            elif not isinstance(value, Mapping):
                # Other layers own other tables; a stray top-level value is a typo.
                raise ConfigurationError(key, "clave desconocida")

        plazos = _table(
            data,
            "plazos",
            {"rotacion_dias_habiles", "notificacion_minutos", "antiguedad_maxima_dias"},
        )
        if "antiguedad_maxima_dias" in plazos:
            kwargs["max_password_age_days"] = _integer(
                "plazos.antiguedad_maxima_dias", plazos["antiguedad_maxima_dias"]
            )
        if "rotacion_dias_habiles" in plazos:
            kwargs["rotation_business_days"] = _integer(
                "plazos.rotacion_dias_habiles", plazos["rotacion_dias_habiles"]
            )
        if "notificacion_minutos" in plazos:
            minutes = _integer("plazos.notificacion_minutos", plazos["notificacion_minutos"])
            kwargs["notification_window"] = timedelta(minutes=minutes)

        horario = _table(data, "horario", {"dias", "inicio", "fin"})
        if "dias" in horario:
            kwargs["working_days"] = _weekdays("horario.dias", horario["dias"])
        if "inicio" in horario:
            kwargs["working_hours_start"] = _time_of_day("horario.inicio", horario["inicio"])
        if "fin" in horario:
            kwargs["working_hours_end"] = _time_of_day("horario.fin", horario["fin"])

        calendario = _table(data, "calendario", {"pais_feriados", "dias_inhabiles"})
        if "pais_feriados" in calendario:
            country = _string("calendario.pais_feriados", calendario["pais_feriados"]).upper()
            kwargs["holiday_country"] = country or None
        if "dias_inhabiles" in calendario:
            kwargs["extra_non_working_days"] = _dates(
                "calendario.dias_inhabiles", calendario["dias_inhabiles"]
            )
        equipos = _table(data, "equipos", {"exigir_registrado"})
        if "exigir_registrado" in equipos:
            kwargs["require_registered_device"] = equipos["exigir_registrado"]
        cuentas = _table(data, "cuentas", {"prefijos_telefono"})
        if "prefijos_telefono" in cuentas:
            prefixes = cuentas["prefijos_telefono"]
            if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
                raise ConfigurationError(
                    "cuentas.prefijos_telefono", "debe ser una lista de textos"
                )
            kwargs["institutional_phone_prefixes"] = tuple(p.strip() for p in prefixes)
        return cls(**kwargs)


def _table(data: Mapping[str, Any], name: str, known: set[str]) -> Mapping[str, Any]:
    table: Mapping[str, Any] = data.get(name, {})
    for key in table:
        if key not in known:
            raise ConfigurationError(f"{name}.{key}", "clave desconocida")
    return table


def _string(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(name, "debe ser texto")
    return value.strip()


def _integer(name: str, value: object) -> int:
    if type(value) is not int:
        raise ConfigurationError(name, "debe ser un número entero")
    return value


def _time_of_day(name: str, value: object) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        try:
            return time.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConfigurationError(name, "debe ser una hora HH:MM")


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.strip().lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _weekdays(name: str, value: object) -> frozenset[int]:
    if not isinstance(value, list) or not value:
        raise ConfigurationError(name, "debe ser una lista de días (lunes … domingo)")
    days: set[int] = set()
    for item in value:
        if not isinstance(item, str) or _plain(item) not in WEEKDAY_NAMES:
            raise ConfigurationError(name, f"día desconocido: {item!r}")
        days.add(WEEKDAY_NAMES.index(_plain(item)))
    return frozenset(days)


def _dates(name: str, value: object) -> frozenset[date]:
    if not isinstance(value, list):
        raise ConfigurationError(name, "debe ser una lista de fechas AAAA-MM-DD")
    days: set[date] = set()
    for item in value:
        if isinstance(item, date) and not isinstance(item, datetime):
            days.add(item)
            continue
        if isinstance(item, str):
            try:
                days.add(date.fromisoformat(item.strip()))
                continue
            except ValueError:
                pass
        raise ConfigurationError(name, f"fecha inválida: {item!r}")
    return frozenset(days)
