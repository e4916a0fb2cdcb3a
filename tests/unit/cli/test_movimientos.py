"""The CSV of ``personas importar`` (issue 18): every row checked before any is applied, errors
in Spanish with their line numbers, and a plan that finds what is already in effect."""

from __future__ import annotations

from typing import Any

import pytest

from cli.movimientos import (
    COLUMNS,
    Movement,
    MovementFileError,
    parse_movements,
    parse_passwords,
    plan,
)

HEADER = ",".join(COLUMNS)


def _file(*lines: str, header: str = HEADER) -> str:
    return "\n".join([header, *lines]) + "\n"


def _problems(text: str) -> list[str]:
    with pytest.raises(MovementFileError) as refused:
        parse_movements(text)
    return refused.value.problems


def test_a_valid_file_gives_one_movement_per_row_with_its_line() -> None:
    """Hires, departures and transfers are read with their file line numbers; names, e-mails
    and phones are normalised as the service does; a UTF-8 BOM and blank lines are fine."""
    text = "\ufeff" + _file(
        "alta,Ana2,Ana Dos,Ana2@IECM.MX,55 1234 5678,administrador,5,,,",
        "",
        "baja,bety,,,,,,cambio-adscripcion,RH/1/2026,2026-02-01",
        "cambio,carlos,,,,titular,dd07,traslado,RH/2/2026,",
    )
    movements = parse_movements(text)
    assert [(m.line, m.kind, m.usuario) for m in movements] == [
        (2, "alta", "ana2"),
        (4, "baja", "bety"),
        (5, "cambio", "carlos"),
    ]
    hire = movements[0]
    assert hire.correo == "Ana2@iecm.mx"
    assert hire.distrito == "DD05"
    assert hire.telefono is not None
    assert movements[1].motivo == "cambio-adscripcion"
    assert movements[2].distrito == "DD07"


def test_every_bad_row_is_reported_with_its_line_and_nothing_is_returned() -> None:
    """One problem per bad field, each naming its line; good rows do not make the file pass."""
    problems = _problems(
        _file(
            "alta,ana3,Ana,ana3@iecm.mx,,administrador,DD05,,,",
            "alta,ana4,,no-es-correo,12,jefa,,,,",
            "baja,bety,,,,,,jubilacion,,",
            "cambio,carlos,,,,titular,,,RH/3,31-12-2026",
            "mudanza,dora,,,,,,,,",
            "alta,-mal,Mal,mal@iecm.mx,,secretaria,DD05,,,",
        )
    )
    text = "\n".join(problems)
    assert not any(p.startswith("línea 2:") for p in problems)
    for expected in (
        "línea 3: una alta requiere «nombre»",
        "línea 3: «correo» no es un correo válido",
        "línea 3: «telefono» no es un teléfono válido",
        "línea 3: «rol» debe ser uno de",
        "línea 4: una baja requiere «motivo»",
        "línea 4: una baja requiere «oficio»",
        "línea 5: el rol titular requiere «distrito»",
        "línea 5: «fecha» debe ser AAAA-MM-DD",
        "línea 6: «movimiento» debe ser alta, baja o cambio",
        "línea 7: «usuario» no es un usuario válido",
        "línea 7: el rol secretaria no lleva «distrito»",
    ):
        assert expected in text, expected


def test_a_person_twice_unknown_columns_and_empty_files_are_refused() -> None:
    """One movement per person per file; a misspelt column is refused, not ignored (it would
    silently drop data); a file without rows or header is refused."""
    problems = _problems(
        _file("baja,bety,,,,,,baja,RH/1,", "cambio,Bety,,,,administrador,DD05,,RH/2,")
    )
    assert problems == [
        "línea 3: bety ya aparece en la línea 2; un archivo lleva un solo movimiento por persona."
    ]
    assert (
        "columnas desconocidas: contrasena"
        in _problems(
            _file("alta,x1,X,x1@iecm.mx,,secretaria,,,,,clave", header=HEADER + ",contrasena")
        )[0]
    )
    assert _problems(_file()) == ["El archivo no tiene movimientos."]
    assert "encabezados" in _problems("")[0]
    assert "más campos" in _problems(_file("baja,bety,,,,,,baja,RH/1,,extra"))[0]


PEOPLE: list[dict[str, Any]] = [
    {"usuario": "bety", "roles": {"administrador": "DD05"}, "borrado": False, "baja": None},
    {"usuario": "luis", "roles": {"titular": "DD05"}, "borrado": False, "baja": None},
    {"usuario": "rosa", "roles": {}, "borrado": False, "baja": "2026-01-01T00:00:00+00:00"},
]


def test_the_plan_says_what_changes_and_what_is_already_in_effect() -> None:
    """A movement already in effect is ``sin_cambios`` (a second run changes nothing); the
    others say what they change."""
    movements = parse_movements(
        _file(
            "alta,nuevo,Nuevo,nuevo@iecm.mx,,administrador,DD09,,,",
            "alta,bety,Bety,bety@iecm.mx,,administrador,DD05,,,",
            "baja,luis,,,,,,promocion,RH/1,",
            "baja,rosa,,,,,,baja,RH/2,",
            "cambio,betty,,,,administrador,DD05,,RH/3,",
        )
    )
    people: list[dict[str, Any]] = [
        *PEOPLE,
        {"usuario": "betty", "roles": {"administrador": "DD05"}, "baja": None},
    ]
    steps = plan(movements, people)
    assert [(s.movement.usuario, s.accion) for s in steps] == [
        ("nuevo", "alta"),
        ("bety", "sin_cambios"),
        ("luis", "baja"),
        ("rosa", "sin_cambios"),
        ("betty", "sin_cambios"),
    ]
    assert "titular DD05" in steps[2].detalle
    moved = plan(parse_movements(_file("cambio,bety,,,,administrador,DD11,,RH/4,")), PEOPLE)
    assert moved[0].accion == "cambio"
    assert moved[0].detalle == "administrador DD05 → administrador DD11"


def test_the_plan_refuses_the_whole_file_when_a_row_cannot_apply() -> None:
    """Unknown people, a departed person hired or moved, a registered person hired with another
    role: every such row named, nothing planned."""
    movements = parse_movements(
        _file(
            "baja,nadie,,,,,,baja,RH/1,",
            "alta,rosa,Rosa,rosa@iecm.mx,,secretaria,,,,",
            "cambio,olga,,,,secretaria,,,RH/2,",
            "alta,luis,Luis,luis@iecm.mx,,administrador,DD05,,,",
            "alta,nueva,Nueva,nueva@iecm.mx,,secretaria,,,,",
        )
    )
    olga = {"usuario": "olga", "roles": {}, "borrado": True, "baja": "2026-01-02T00:00:00+00:00"}
    with pytest.raises(MovementFileError) as refused:
        plan(movements, [*PEOPLE, olga])
    assert refused.value.problems == [
        "línea 2: nadie no está registrada en Custodia.",
        "línea 3: rosa ya causó baja; no se puede dar de alta.",
        "línea 4: olga ya causó baja; no admite cambios.",
        "línea 5: luis ya está registrada con otro rol; use «cambio».",
    ]


def test_the_plan_keeps_one_titular_per_district_in_the_files_order() -> None:
    """A second titular for a district is refused in the preview, as applying it would be
    (before: shown as "alta como titular DD05", then refused half-way through --aplicar); a
    titular whose baja or cambio comes first in the file leaves the post free."""
    second = parse_movements(_file("alta,jose,José,jose@iecm.mx,,titular,DD05,,,"))
    with pytest.raises(MovementFileError) as refused:
        plan(second, PEOPLE)
    assert refused.value.problems == [
        "línea 2: DD05 ya tiene persona titular (luis); registre antes su baja o su cambio."
    ]
    replaced = parse_movements(
        _file(
            "baja,luis,,,,,,promocion,RH/1,",
            "alta,jose,José,jose@iecm.mx,,titular,DD05,,,",
            "cambio,bety,,,,titular,DD05,,RH/2,",
        )
    )
    with pytest.raises(MovementFileError) as refused:
        plan(replaced, PEOPLE)
    assert refused.value.problems == [
        "línea 4: DD05 ya tiene persona titular (jose); registre antes su baja o su cambio."
    ]
    steps = plan(replaced[:2], PEOPLE)
    assert [s.accion for s in steps] == ["baja", "alta"]


def test_a_step_row_never_carries_contact_data() -> None:
    """What the dry run and the report show of a hire: no name, e-mail or phone."""
    hire = Movement(2, "alta", "nuevo", "Nombre Secreto", "secreto@iecm.mx", "5512345678",
                    "secretaria")  # fmt: skip
    row = plan([hire], [])[0].row()
    shown = repr(row)
    assert "Secreto" not in shown
    assert "secreto@" not in shown
    assert "5512345678" not in shown


def test_initial_passwords_are_one_user_and_password_a_line() -> None:
    """``usuario contraseña`` or ``usuario<TAB>contraseña``; the password is the rest of the
    line (spaces included); a malformed line is named by number, never echoed."""
    given = parse_passwords("Ana2 una clave larga 1\nbety\tclave-2\n\n")
    assert given == {"ana2": "una clave larga 1", "bety": "clave-2"}
    with pytest.raises(MovementFileError) as refused:
        parse_passwords("solo-usuario\n-mal clave-secreta\n")
    assert refused.value.problems == [
        "contraseñas, línea 1: se esperaba «usuario contraseña».",
        "contraseñas, línea 2: se esperaba «usuario contraseña».",
    ]
    assert "clave-secreta" not in repr(refused.value.problems)
