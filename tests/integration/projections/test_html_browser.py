"""The HTML report renders in a real browser (Debian's headless ``chromium``), charts included.

The report of the projection tests' scenario (plus a month of incidents) is written to a file,
opened offline by chromium, and screenshotted; the PNG is decoded here and each chart's own
colour (:data:`projections.html.COLORS`, used by nothing else on the page) must cover a bar's
worth of pixels. Skipped only if no chromium executable can be found
(``apt-get install -y chromium``).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from events.domain import Incident, OfficialChannel
from projections.html import COLORS
from projections.names import PersonNames
from projections.render import render
from projections.reports import ReportFilter, Scope, load_report
from tests.unit.domain.domain_world import FINGERPRINT, OFICIO, POLICY
from tests.unit.projections.local import open_view
from tests.unit.projections.scenario import USERNAMES, build, local

pytestmark = pytest.mark.integration

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB(A) rows of an 8-bit, non-interlaced PNG (what chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunk, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if chunk == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert (depth, interlace) == (8, 0)
            channels = {2: 3, 6: 4}[color]
        elif chunk == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind: int = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up, corner = previous[x], previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[x] = (line[x] + pred) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, [bytes(r) if channels == 3 else _rgb(r) for r in rows]


def _rgb(row: bytes) -> bytes:
    return bytes(b for i, b in enumerate(row) if i % 4 != 3)


def positions(row: bytes, colour: tuple[int, int, int]) -> set[int]:
    """The x of every pixel of exactly ``colour`` in a row of RGB bytes."""
    target, found, start = bytes(colour), set(), 0
    while (i := row.find(target, start)) != -1:
        if i % 3 == 0:
            found.add(i // 3)
        start = i + 1
    return found


def longest_runs(rows: list[bytes], colour: tuple[int, int, int]) -> tuple[int, int]:
    """The longest horizontal and vertical runs of pixels of exactly ``colour``."""
    horizontal, vertical = 0, 0
    heights: dict[int, int] = {}
    for row in rows:
        xs = positions(row, colour)
        run = best = 0
        previous = -2
        for x in sorted(xs):
            run = run + 1 if x == previous + 1 else 1
            best, previous = max(best, run), x
        horizontal = max(horizontal, best)
        heights = {x: heights.get(x, 0) + 1 for x in xs}
        vertical = max(vertical, *heights.values()) if heights else vertical
    return horizontal, vertical


def rgb(hex_colour: str) -> tuple[int, int, int]:
    value = int(hex_colour.lstrip("#"), 16)
    return (value >> 16, (value >> 8) & 0xFF, value & 0xFF)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not found: apt-get install -y chromium")
def test_html_report_charts_render_in_headless_chromium(tmp_path: Path) -> None:
    """Opened offline in chromium, the compliance report draws its three charts: bars in the
    time-to-rotate, on-time and incidents colours, each longer than a legend swatch."""
    s = build(tmp_path)
    w = s.world
    # A week later: carla designated; both accounts rotated the next afternoon (one on time,
    # one late), and three incidents, so that every chart has bars of some size.
    w.district.designate(w.carla, by=w.titular, channel=OFICIO, policy=POLICY, at=local(10, 10))
    for account, version in (("DD05-x", 3), ("DD05-facebook", 2)):
        w.district.start_rotation(
            account, version=version, fingerprint=FINGERPRINT, by=w.coadmin, at=local(11, 15)
        )
        w.district.confirm_rotation(account, version=version, by=w.coadmin, at=local(11, 15))
    s.ledger.save(w.district)
    for day in (10, 11, 12):
        incident = Incident.report(
            w.district, "DD05-x", "operacion_no_autorizada", "acceso indebido",
            by=w.coadmin, policy=POLICY, at=local(day, 10),
        )  # fmt: skip
        incident.notify(channel=OfficialChannel.memorandum("MEM/SE/9"), by=w.coadmin,
                        at=local(day, 10, 30))  # fmt: skip
        s.ledger.save(incident)
    view = open_view(s.db)
    try:
        s.ledger.project(view)
    finally:
        view.close()
    report = load_report(
        "cumplimiento", Scope("secretaria"), ReportFilter(), database=s.db,
        names=PersonNames(USERNAMES), now=local(12, 12),
    )  # fmt: skip
    page = tmp_path / "cumplimiento.html"
    page.write_text(render(report, "html"), encoding="utf-8")
    shot = tmp_path / "cumplimiento.png"
    assert CHROMIUM is not None
    subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={tmp_path / 'perfil'}", "--hide-scrollbars",
            f"--screenshot={shot}", "--window-size=1280,1100", page.as_uri(),
        ],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip

    width, height, rows = decode_png(shot.read_bytes())
    assert (width, height) == (1280, 1100)
    # Legend swatches are 10 x 10 (11 x 11 once rasterized); a bar or column is longer one way.
    runs = {key: longest_runs(rows, rgb(colour)) for key, colour in COLORS.items()}
    for key in ("mediana", "cumplida", "cumplida_tarde"):  # horizontal bars
        assert runs[key][0] >= 20, (key, runs[key])
    for key in ("p90", "intervencion", "operacion_no_autorizada"):  # ticks and columns
        assert runs[key][1] >= 14, (key, runs[key])
    assert max(runs["vencida"]) <= 12  # nothing overdue any more: only its legend swatch
