"""``personas importar``: the HR extract of hires, departures and transfers (issue 18).

The file is CSV (UTF-8, a BOM allowed, comma-separated) whose first line names the columns::

    movimiento,usuario,nombre,correo,telefono,rol,distrito,motivo,oficio,fecha

- ``movimiento``: ``alta`` (a hire), ``baja`` (a departure) or ``cambio`` (a transfer,
  *cambio de adscripción*: another role or district).
- ``alta``: ``usuario``, ``nombre``, ``correo``, ``rol`` required; ``telefono`` optional;
  ``distrito`` required for a titular, optional for an administrator, empty otherwise.
- ``baja``: ``usuario``, ``motivo`` (``baja``, ``promocion``, ``cambio-adscripcion``, ``otro``)
  and ``oficio`` required.
- ``cambio``: ``usuario``, ``rol`` (``distrito`` as for ``alta``) and ``oficio`` required; the
  person ends up holding exactly that role.
- ``fecha``: the oficio's date (AAAA-MM-DD), optional. ``nombre``, ``correo`` and ``telefono`` of
  a ``baja`` or ``cambio`` are not used (personal data are changed by no import).

Pure functions: :func:`parse_movements` checks every row and raises one
:class:`MovementFileError` listing every problem with its line; :func:`plan` compares the rows
with the people the service knows (``personas lista``) and says what each would change, again
refusing the whole file if any row cannot apply. Nothing here talks to the service.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, Literal

# The domain's parsers are imported where used: ``--help`` keeps eventsourcing out.

COLUMNS: Final = (
    "movimiento",
    "usuario",
    "nombre",
    "correo",
    "telefono",
    "rol",
    "distrito",
    "motivo",
    "oficio",
    "fecha",
)
KINDS: Final = ("alta", "baja", "cambio")
DEPARTURE_MOTIVOS: Final = ("baja", "promocion", "cambio-adscripcion", "otro")
MAX_ROWS: Final = 5000

Kind = Literal["alta", "baja", "cambio"]
Action = Literal["alta", "baja", "cambio", "sin_cambios"]


class MovementFileError(ValueError):
    """The file cannot be applied: every problem found, each a Spanish line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


@dataclass(frozen=True)
class Movement:
    """One checked row of the file (``line``: its line number in the file)."""

    line: int
    kind: Kind
    usuario: str
    nombre: str | None = None
    correo: str | None = None
    telefono: str | None = None
    rol: str | None = None
    distrito: str | None = None
    motivo: str | None = None
    oficio: str | None = None
    fecha: str | None = None


@dataclass(frozen=True)
class Step:
    """What one movement would change: ``accion`` and a Spanish ``detalle``."""

    movement: Movement
    accion: Action
    detalle: str

    def row(self) -> dict[str, Any]:
        """The step as shown (table and ``--json``): never contact data, never a password."""
        m = self.movement
        return {
            "linea": m.line,
            "movimiento": m.kind,
            "usuario": m.usuario,
            "rol": m.rol,
            "distrito": m.distrito,
            "accion": self.accion,
            "detalle": self.detalle,
        }


def _role_text(role: str | None, district: str | None) -> str:
    return f"{role} {district}" if district else str(role)


def _check_role(
    where: str, role: str, district: str, problems: list[str]
) -> tuple[str | None, str | None]:
    from events.domain import DistrictId, ValidationError
    from events.domain.values import ROLES

    if role not in ROLES:
        problems.append(f"{where}: «rol» debe ser uno de {', '.join(ROLES)}.")
        return None, None
    code = None
    if district:
        try:
            code = str(DistrictId.parse(district))
        except ValidationError:
            problems.append(f"{where}: «distrito» no es válido (DD01 a DD33).")
            return role, None
        if role in ("coadministrador", "secretaria"):
            problems.append(f"{where}: el rol {role} no lleva «distrito».")
    elif role == "titular":
        problems.append(f"{where}: el rol titular requiere «distrito».")
    return role, code


def _row(line: int, raw: dict[str, str], problems: list[str]) -> Movement | None:
    from events.domain import Username, ValidationError
    from events.domain.values import validate_email, validate_phone, validate_text

    where = f"línea {line}"
    values = {k: (raw.get(k) or "").strip() for k in COLUMNS}
    before = len(problems)
    kind = values["movimiento"].lower()
    if kind not in KINDS:
        problems.append(f"{where}: «movimiento» debe ser alta, baja o cambio.")
        return None
    try:
        usuario = str(Username.parse(values["usuario"]))
    except ValidationError:
        problems.append(f"{where}: «usuario» no es un usuario válido.")
        usuario = ""
    for name in ("nombre", "motivo", "oficio"):
        if values[name]:
            try:
                validate_text(name, values[name], max_length=200)
            except ValidationError:
                problems.append(f"{where}: «{name}» tiene caracteres no permitidos o es muy largo.")
    fecha = values["fecha"] or None
    if fecha:
        try:
            date.fromisoformat(fecha)
        except ValueError:
            problems.append(f"{where}: «fecha» debe ser AAAA-MM-DD.")
    movement: Movement | None = None
    if kind == "alta":
        for name in ("nombre", "correo", "rol"):
            if not values[name]:
                problems.append(f"{where}: una alta requiere «{name}».")
        correo = telefono = None
        if values["correo"]:
            try:
                correo = validate_email("correo", values["correo"])
            except ValidationError:
                problems.append(f"{where}: «correo» no es un correo válido.")
        if values["telefono"]:
            try:
                telefono = validate_phone("telefono", values["telefono"])
            except ValidationError:
                problems.append(f"{where}: «telefono» no es un teléfono válido.")
        if values["motivo"]:
            problems.append(f"{where}: una alta no lleva «motivo».")
        role, code = (None, None)
        if values["rol"]:
            role, code = _check_role(where, values["rol"], values["distrito"], problems)
        movement = Movement(
            line, "alta", usuario, values["nombre"], correo, telefono, role, code,
            None, values["oficio"] or None, fecha,
        )  # fmt: skip
    elif kind == "baja":
        motivo = values["motivo"].lower()
        if motivo not in DEPARTURE_MOTIVOS:
            problems.append(f"{where}: una baja requiere «motivo»: {', '.join(DEPARTURE_MOTIVOS)}.")
        if not values["oficio"]:
            problems.append(f"{where}: una baja requiere «oficio» (vía oficial, 6.X).")
        movement = Movement(
            line, "baja", usuario, motivo=motivo, oficio=values["oficio"], fecha=fecha
        )
    else:
        if not values["rol"]:
            problems.append(f"{where}: un cambio requiere «rol».")
        if not values["oficio"]:
            problems.append(f"{where}: un cambio requiere «oficio» (vía oficial, 6.X).")
        role, code = (None, None)
        if values["rol"]:
            role, code = _check_role(where, values["rol"], values["distrito"], problems)
        movement = Movement(
            line, "cambio", usuario, rol=role, distrito=code,
            motivo=values["motivo"] or None, oficio=values["oficio"], fecha=fecha,
        )  # fmt: skip
    return movement if len(problems) == before else None


def parse_movements(text: str) -> list[Movement]:
    """Every row of the file, checked; :class:`MovementFileError` with every problem found."""
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if not header:
        raise MovementFileError(["El archivo está vacío: falta la línea de encabezados."])
    reader.fieldnames = header
    problems: list[str] = []
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        problems.append(
            "línea 1: columnas desconocidas: "
            + ", ".join(sorted(set(unknown)))
            + f". Las columnas son: {','.join(COLUMNS)}."
        )
    for required in ("movimiento", "usuario"):
        if required not in header:
            problems.append(f"línea 1: falta la columna «{required}».")
    if problems:
        raise MovementFileError(problems)
    movements: list[Movement] = []
    seen: dict[str, int] = {}
    for raw in reader:
        line = reader.line_num
        if None in raw:
            problems.append(f"línea {line}: tiene más campos que encabezados.")
            continue
        if not any((v or "").strip() for v in raw.values()):
            continue  # a blank line
        if len(movements) >= MAX_ROWS:
            problems.append(f"El archivo tiene más de {MAX_ROWS} movimientos; divídalo.")
            break
        movement = _row(line, raw, problems)
        if movement is None:
            continue
        if movement.usuario in seen:
            problems.append(
                f"línea {line}: {movement.usuario} ya aparece en la línea "
                f"{seen[movement.usuario]}; un archivo lleva un solo movimiento por persona."
            )
            continue
        seen[movement.usuario] = line
        movements.append(movement)
    if problems:
        raise MovementFileError(problems)
    if not movements:
        raise MovementFileError(["El archivo no tiene movimientos."])
    return movements


def plan(movements: list[Movement], people: list[dict[str, Any]]) -> list[Step]:
    """What each movement changes against ``people`` (the rows of ``personas lista``):
    a movement already in effect is ``sin_cambios`` (a second run changes nothing).
    :class:`MovementFileError` if any movement cannot apply to the current state."""
    known = {str(p.get("usuario")): p for p in people}
    steps: list[Step] = []
    problems: list[str] = []
    # Each district's titular as the movements leave it, in the order they are applied: a
    # district has one (a second is refused when applied; said here, before anything is).
    titulars = {
        str(district): str(p.get("usuario"))
        for p in people
        if not p.get("baja")
        for role, district in dict(p.get("roles") or {}).items()
        if role == "titular" and district
    }
    for m in movements:
        where = f"línea {m.line}"
        person = known.get(m.usuario)
        roles: dict[str, Any] = dict((person or {}).get("roles") or {})
        departed = bool(person and person.get("baja"))
        erased = bool(person and person.get("borrado"))
        if m.kind in ("baja", "cambio"):
            for district, holder in list(titulars.items()):
                if holder == m.usuario:
                    del titulars[district]
        if m.kind in ("alta", "cambio") and m.rol == "titular" and m.distrito:
            current = titulars.get(m.distrito)
            if current not in (None, m.usuario):
                problems.append(
                    f"{where}: {m.distrito} ya tiene persona titular ({current}); registre antes "
                    "su baja o su cambio."
                )
                continue
            titulars[m.distrito] = m.usuario
        if m.kind == "alta":
            if person is None:
                steps.append(Step(m, "alta", f"alta como {_role_text(m.rol, m.distrito)}"))
            elif departed or erased:
                problems.append(f"{where}: {m.usuario} ya causó baja; no se puede dar de alta.")
            elif m.rol in roles and roles[m.rol] == m.distrito:
                steps.append(Step(m, "sin_cambios", "ya registrada con ese rol"))
            else:
                problems.append(
                    f"{where}: {m.usuario} ya está registrada con otro rol; use «cambio»."
                )
        elif m.kind == "baja":
            if person is None:
                problems.append(f"{where}: {m.usuario} no está registrada en Custodia.")
            elif departed:
                steps.append(Step(m, "sin_cambios", "ya causó baja"))
            else:
                held = ", ".join(_role_text(r, d) for r, d in sorted(roles.items())) or "sin roles"
                steps.append(Step(m, "baja", f"baja ({m.motivo}); terminan: {held}"))
        else:
            if person is None:
                problems.append(f"{where}: {m.usuario} no está registrada en Custodia.")
            elif departed or erased:
                problems.append(f"{where}: {m.usuario} ya causó baja; no admite cambios.")
            elif roles == {m.rol: m.distrito}:
                steps.append(Step(m, "sin_cambios", "ya tiene ese rol"))
            else:
                held = ", ".join(_role_text(r, d) for r, d in sorted(roles.items())) or "sin roles"
                steps.append(Step(m, "cambio", f"{held} → {_role_text(m.rol, m.distrito)}"))
    if problems:
        raise MovementFileError(problems)
    return steps


def parse_passwords(text: str) -> dict[str, str]:
    """Initial passwords from standard input: one ``usuario<tab or space>contraseña`` a line
    (the password is the rest of the line). Refused lines are named by number only."""
    from events.domain import Username, ValidationError

    passwords: dict[str, str] = {}
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.rstrip("\r\n").lstrip().replace("\t", " ", 1).split(" ", 1)
        try:
            user = str(Username.parse(parts[0]))
        except ValidationError:
            user = ""
        if len(parts) != 2 or not user:
            problems.append(f"contraseñas, línea {number}: se esperaba «usuario contraseña».")
            continue
        passwords[user] = parts[1]
    if problems:
        raise MovementFileError(problems)
    return passwords
