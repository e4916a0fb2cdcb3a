"""Policy: deadlines, working hours and the business-day calendar (Mexico City, MX holidays)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.domain import NaiveDatetimeError, Policy
from events.errors import ConfigurationError

MEXICO = ZoneInfo("America/Mexico_City")
POLICIES = {n: Policy(rotation_business_days=n) for n in range(4)}


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A Mexico City wall-clock instant."""
    return datetime(year, month, day, hour, minute, tzinfo=MEXICO)


@pytest.mark.parametrize(
    ("opened", "deadline"),
    [
        # Monday 10:00 → end of Tuesday.
        (local(2025, 3, 3, 10, 0), local(2025, 3, 5, 0, 0)),
        # Monday 23:30 local is Tuesday in UTC; the local day counts.
        (local(2025, 3, 3, 23, 30), local(2025, 3, 5, 0, 0)),
        # Friday → end of Monday.
        (local(2025, 3, 7, 17, 0), local(2025, 3, 11, 0, 0)),
        # Saturday → end of Monday.
        (local(2025, 3, 8, 12, 0), local(2025, 3, 11, 0, 0)),
        # Friday before Benito Juárez's Monday (17 March 2025) → end of Tuesday.
        (local(2025, 3, 14, 9, 0), local(2025, 3, 19, 0, 0)),
        # Friday before Revolution Day (Monday 17 November 2025) → end of Tuesday.
        (local(2025, 11, 14, 12, 0), local(2025, 11, 19, 0, 0)),
        # 15 September → 16 September is Independence Day → end of the 17th.
        (local(2025, 9, 15, 12, 0), local(2025, 9, 18, 0, 0)),
    ],
)
def test_rotation_deadline_is_the_end_of_the_next_business_day(
    opened: datetime, deadline: datetime
) -> None:
    """6.X default: rotate by 24:00 Mexico City of the next business day (weekends and Mexican
    public holidays skipped); the result is in UTC."""
    result = Policy().rotation_deadline(opened)
    assert result == deadline
    assert result.tzinfo is UTC


def test_rotation_deadline_is_configurable() -> None:
    """N = 0 is the end of the same business day (or the next one); N = 2 skips one more."""
    assert POLICIES[0].rotation_deadline(local(2025, 3, 3, 10)) == local(2025, 3, 4)
    assert POLICIES[0].rotation_deadline(local(2025, 3, 8, 10)) == local(2025, 3, 11)
    assert POLICIES[2].rotation_deadline(local(2025, 3, 6, 10)) == local(2025, 3, 11)


_INSTANTS = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=200, deadline=None)
@given(opened=_INSTANTS, n=st.integers(min_value=0, max_value=3))
def test_rotation_deadline_counts_exactly_n_business_days(opened: datetime, n: int) -> None:
    """For any instant: the deadline is a local midnight ending a business day, exactly N
    business days after the opening day (or the first business day from it, for N = 0)."""
    policy = POLICIES[n]
    deadline = policy.rotation_deadline(opened)
    assert deadline > opened
    end = deadline.astimezone(MEXICO)
    assert end.time() == time(0)
    last_day = end.date() - timedelta(days=1)
    assert policy.is_business_day(last_day)
    first_day = policy.local_date(opened)
    days = [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    if n == 0:
        assert not any(policy.is_business_day(d) for d in days[:-1])
    else:
        assert sum(policy.is_business_day(d) for d in days[1:]) == n


def test_notification_deadline_is_an_hour_any_time() -> None:
    """8.C "inmediatamente": one hour by default, even on a Sunday night; configurable."""
    sunday_night = local(2025, 3, 9, 23, 30)
    assert Policy().notification_deadline(sunday_night) == sunday_night + timedelta(hours=1)
    quick = Policy(notification_window=timedelta(minutes=15))
    assert quick.notification_deadline(sunday_night) == sunday_night + timedelta(minutes=15)


@pytest.mark.parametrize(
    ("instant", "working"),
    [
        (local(2025, 3, 3, 9, 0), True),  # Monday 09:00 opens
        (local(2025, 3, 3, 8, 59), False),
        (local(2025, 3, 3, 17, 59), True),
        (local(2025, 3, 3, 18, 0), False),  # 18:00 closes
        (local(2025, 3, 8, 10, 0), False),  # Saturday
        (local(2025, 9, 16, 10, 0), False),  # Independence Day, a Tuesday
        (datetime(2025, 3, 3, 15, 30, tzinfo=UTC), True),  # 09:30 in Mexico City
        (datetime(2025, 3, 4, 0, 30, tzinfo=UTC), False),  # 18:30 in Mexico City
    ],
)
def test_working_hours(instant: datetime, working: bool) -> None:
    """8.A default: Monday–Friday 09:00–18:00 Mexico City, not on public holidays."""
    assert Policy().is_working_time(instant) is working
    assert Policy().is_outside_working_hours(instant) is not working


def test_naive_instants_are_refused() -> None:
    """Every instant must say its time zone."""
    with pytest.raises(NaiveDatetimeError):
        Policy().rotation_deadline(datetime(2025, 3, 3, 10))
    with pytest.raises(NaiveDatetimeError):
        Policy().is_working_time(datetime(2025, 3, 3, 10))


def test_policy_file_overrides_defaults(tmp_path: Path) -> None:
    """CUSTODIA_POLITICA: every key maps to a policy value; other layers' tables are ignored."""
    path = tmp_path / "politica.toml"
    path.write_text(
        """
zona_horaria = "America/Tijuana"

[plazos]
rotacion_dias_habiles = 2
notificacion_minutos = 30

[horario]
dias = ["Lunes", "martes", "miércoles", "jueves"]
inicio = "08:30"
fin = 16:00:00

[calendario]
pais_feriados = "mx"
dias_inhabiles = ["2025-12-24", 2025-12-31]

[contrasenas.x]
longitud = 24
""",
        encoding="utf-8",
    )
    policy = Policy.from_toml(path)
    assert policy == Policy(
        timezone="America/Tijuana",
        rotation_business_days=2,
        notification_window=timedelta(minutes=30),
        working_days=frozenset({0, 1, 2, 3}),
        working_hours_start=time(8, 30),
        working_hours_end=time(16, 0),
        holiday_country="MX",
        extra_non_working_days=frozenset({date(2025, 12, 24), date(2025, 12, 31)}),
    )
    assert not policy.is_business_day(date(2025, 12, 24))
    assert not policy.is_business_day(date(2025, 3, 7))  # a Friday


def test_a_partial_policy_file_keeps_the_other_defaults(tmp_path: Path) -> None:
    """Missing keys keep their defaults."""
    path = tmp_path / "politica.toml"
    path.write_text("[plazos]\nnotificacion_minutos = 45\n", encoding="utf-8")
    assert Policy.from_toml(path) == Policy(notification_window=timedelta(minutes=45))


def test_no_holiday_country_makes_holidays_business_days() -> None:
    """`pais_feriados = ""` turns public holidays off (only weekends and listed days rest)."""
    policy = Policy.from_mapping({"calendario": {"pais_feriados": ""}})
    assert policy.holiday_country is None
    assert policy.is_business_day(date(2025, 9, 16))


@pytest.mark.parametrize(
    ("document", "key"),
    [
        ({"plazos": {"rotacion_dias": 1}}, "plazos.rotacion_dias"),
        ({"plazos": {"rotacion_dias_habiles": True}}, "plazos.rotacion_dias_habiles"),
        ({"plazos": {"rotacion_dias_habiles": -1}}, "plazos.rotacion_dias_habiles"),
        ({"plazos": {"notificacion_minutos": 0}}, "plazos.notificacion_minutos"),
        ({"plazos": {"notificacion_minutos": "60"}}, "plazos.notificacion_minutos"),
        ({"plazos": 3}, "plazos"),
        ({"horario": {"dias": ["lunes", "funday"]}}, "horario.dias"),
        ({"horario": {"dias": []}}, "horario.dias"),
        ({"horario": {"inicio": "nueve"}}, "horario.inicio"),
        ({"horario": {"inicio": "18:00", "fin": "09:00"}}, "horario.fin"),
        ({"calendario": {"pais_feriados": "ZZ"}}, "calendario.pais_feriados"),
        ({"calendario": {"dias_inhabiles": ["24/12/2025"]}}, "calendario.dias_inhabiles"),
        ({"zona_horaria": "America/Ciudad_Gotica"}, "zona_horaria"),
        ({"zona_horaria": 6}, "zona_horaria"),
        ({"rotacion": 1}, "rotacion"),
    ],
)
def test_bad_policy_values_name_their_key(document: dict[str, object], key: str) -> None:
    """A bad or unknown key raises ConfigurationError naming it, with a Spanish problem."""
    with pytest.raises(ConfigurationError) as raised:
        Policy.from_mapping(document)
    assert raised.value.name == key


def test_unreadable_policy_files_are_configuration_errors(tmp_path: Path) -> None:
    """A missing file or invalid TOML is a ConfigurationError naming the file."""
    missing = tmp_path / "no-existe.toml"
    with pytest.raises(ConfigurationError) as raised:
        Policy.from_toml(missing)
    assert raised.value.name == str(missing)
    broken = tmp_path / "rota.toml"
    broken.write_text("[plazos\n", encoding="utf-8")
    with pytest.raises(ConfigurationError) as raised:
        Policy.from_toml(broken)
    assert raised.value.name == str(broken)
