"""The status page of `lake serve` (``GET /`` and ``GET /status``): one HTML page, rendered on the
server from the database at each request, with its plots as inline SVG. No JavaScript and no
build step: the page is lake_client/static/status.html and status.css, filled in here.

What it shows: the data quality score per dataset and day (from the ingest batches, the figure
of lake.quality_scores' check_type 'all'), the quarantine queue by rule, the jobs with their
last runs, storage by tier per month of data and over time (the figures job's samples in
lake.figure_history), the bridges' lag, and the certificates in LAKE_HOME/tls.

Everything that comes from the database or the disk is escaped (html.escape): dataset names and
error messages are written by users. Each plotted point or bar carries its figure in data-*
attributes, so that a test (or a person with the inspector) can read what the plot shows.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import string
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from lake_client.config import lake_home
from lake_client.errors import LakeError
from lake_client.queries import sql

STATEMENT_TIMEOUT_MS = 5000
# Series colours (Okabe-Ito: told apart by colour-blind readers too) and the tiers' own.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000")
TIER_COLOURS = {
    "hot": "#d55e00",
    "warm": "#e69f00",
    "cold": "#56b4e9",
    "expired": "#cc79a7",
    "overflow": "#999999",
    "archive": "#0072b2",
}
WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 40

Row = dict[str, Any]


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


@dataclass(frozen=True)
class Figures:
    """What the page shows, as read from the database and LAKE_HOME/tls."""

    quality_daily: list[Row]
    quality_now: list[Row]
    quarantine: list[Row]
    jobs: list[Row]
    storage_months: list[Row]
    storage_history: list[Row]
    storage_now: list[Row]
    bridges: list[Row]
    certificates: list[Row]


def read_figures(dsn: str, tls_folder: Path) -> Figures:
    """One short connection, as for a scrape of /metrics."""
    with psycopg.connect(
        dsn,
        connect_timeout=2,
        options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
        application_name="lake-serve-status",
        autocommit=True,
        row_factory=dict_row,
    ) as conn:

        def rows(name: str) -> list[Row]:
            return list(conn.execute(sql(name)))

        return Figures(
            quality_daily=rows("status_quality_daily"),
            quality_now=rows("status_quality_now"),
            quarantine=rows("status_quarantine_rules"),
            jobs=rows("status_jobs"),
            storage_months=rows("status_storage_months"),
            storage_history=rows("status_storage_history"),
            storage_now=rows("status_storage_now"),
            bridges=rows("status_bridges"),
            certificates=read_certificates(tls_folder),
        )


def read_certificates(folder: Path) -> list[Row]:
    """The certificates in ``folder`` (``*.crt``): name, subject, expiry; an unreadable file is
    listed with what is wrong with it."""
    if not folder.is_dir():
        return []
    from lake_client.certs import rules

    found: list[Row] = []
    for path in sorted(folder.glob("*.crt")):
        try:
            info = rules().info(path.read_bytes())
        except (OSError, ValueError, LakeError) as exc:  # LakeError: lake_certs not found
            found.append({"file": path.name, "error": str(exc) or type(exc).__name__})
            continue
        found.append(
            {
                "file": path.name,
                "common_name": info.common_name,
                "is_ca": info.is_ca,
                "not_after": info.not_after,
                "fingerprint": info.fingerprint,
            }
        )
    return found


def page(dsn: str, tls_folder: Path | None = None) -> tuple[int, bytes]:
    """The HTTP status and the HTML of the page; 503 with the reason when the database cannot
    be read."""
    folder = tls_folder if tls_folder is not None else lake_home() / "tls"
    now = dt.datetime.now(dt.UTC)
    try:
        figures = read_figures(dsn, folder)
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        body = f'<p class="error">The lake\'s database cannot be read: {_e(reason)}</p>'
        return 503, _fill(body, now)
    return 200, _fill(render(figures, now), now)


def _fill(body: str, now: dt.datetime) -> bytes:
    static = resources.files("lake_client").joinpath("static")
    template = string.Template(static.joinpath("status.html").read_text())
    return template.substitute(
        css=static.joinpath("status.css").read_text(),
        generated=_e(now.strftime("%Y-%m-%d %H:%M:%S UTC")),
        body=body,
    ).encode()


def render(f: Figures, now: dt.datetime) -> str:
    """The page's body: one section per figure."""
    return "\n".join(
        (
            _section("quality", "Data quality score per day", _quality(f)),
            _section("quarantine", "Quarantine queue by rule", _quarantine(f.quarantine)),
            _section("jobs", "Jobs and their last runs", _jobs(f.jobs)),
            _section("storage", "Storage by tier", _storage(f)),
            _section("bridges", "Bridge lag", _bridges(f.bridges, now)),
            _section("certificates", "Certificates", _certificates(f.certificates, now)),
        )
    )


def _section(ident: str, title: str, content: str) -> str:
    return f'<section id="{ident}">\n<h2>{_e(title)}</h2>\n{content}\n</section>'


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """An HTML table; the cells are HTML already (escaped by the caller)."""
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "\n".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{_e(cls)}"><thead><tr>{th}</tr></thead><tbody>\n{body}\n</tbody></table>'


def _empty(text: str) -> str:
    return f'<p class="empty">{_e(text)}</p>'


# -- the sections ------------------------------------------------------------------------------


def _quality(f: Figures) -> str:
    series: dict[str, list[tuple[dt.date, float, str]]] = defaultdict(list)
    for r in f.quality_daily:
        score = 1 - r["quarantined"] / r["received"]
        note = f"{r['received'] - r['quarantined']} of {r['received']} records stored"
        series[r["dataset"]].append((r["day"], score, note))
    plot = (
        _line_plot(series, "score")
        if series
        else _empty("No records received in the last 90 days.")
    )
    now_rows = [
        (
            _e(r["dataset"]),
            _e(r["time_window"]),
            _e(r["received"]),
            _e(r["failed"]),
            f'<span class="num">{r["score"]:.3f}</span>',
        )
        for r in f.quality_now
    ]
    table = (
        _table(("dataset", "window", "received", "failed a check", "score"), now_rows, "quality")
        if now_rows
        else ""
    )
    return (
        '<p class="note">1 &minus; quarantined / received, per day (UTC) of the ingest batches, '
        "the last 90 days; the table is lake.quality_scores (all checks).</p>\n"
        f'<div class="figure">{plot}\n{table}</div>'
    )


def _quarantine(rows: list[Row]) -> str:
    if not rows:
        return _empty("The quarantine queue is empty: no item awaits a decision.")
    # The bars carry their labels and figures as text: no table beside them.
    return _bar_plot(
        [(f"{_short(r['dataset'], 22)} · {r['rule']}", int(r["items"]), r) for r in rows]
    )


def _jobs(rows: list[Row]) -> str:
    if not rows:
        return _empty("No jobs are defined.")

    def recent(statuses: list[str]) -> str:
        if not statuses:
            return '<span class="muted">no runs yet</span>'
        return "".join(
            f'<span class="run run-{_e(s)}" title="{_e(s)}">{_e(s[:1])}</span>' for s in statuses
        )

    return _table(
        ("job", "schedule", "in pg_cron", "last start", "last status", "failures 24 h", "runs"),
        (
            (
                f'<span class="job">{_e(r["job"])}</span>',
                f"<code>{_e(r['schedule'])}</code>",
                "yes" if r["scheduled"] else "no",
                _e(_when(r["last_start"])),
                _status(r["last_status"], r["last_error"]),
                _e(r["failures_24h"]),
                recent(list(r["recent"] or [])),
            )
            for r in rows
        ),
        "jobs",
    )


def _status(status: str | None, error: str | None) -> str:
    if status is None:
        return '<span class="muted">never ran</span>'
    title = f' title="{_e(error)}"' if error else ""
    return f'<span class="status status-{_e(status)}"{title}>{_e(status)}</span>'


def _storage(f: Figures) -> str:
    months: dict[dt.date, dict[str, int]] = defaultdict(dict)
    for r in f.storage_months:
        months[r["month"]][r["tier"]] = int(r["bytes"] or 0)
    plot = (
        _stacked_plot(months)
        if months
        else _empty("No month partitions yet: no data has been ingested.")
    )
    days: dict[dt.date, dict[str, int]] = defaultdict(dict)
    for r in f.storage_history:
        days[r["day"]][r["tier"]] = int(r["bytes"] or 0)
    history = (
        _stacked_plot(days, "day")
        if days
        else _empty("No samples yet: the figures job takes one every 15 minutes.")
    )
    now_rows = [
        (
            _e(r["storage_type"])
            + (f' <span class="muted">({r["parts"]} schemas)</span>' if r["parts"] > 1 else ""),
            f'<span class="num">{_bytes(r["bytes"])}</span>',
        )
        for r in f.storage_now
    ]
    return (
        '<p class="note">Bytes per month of data, in the tier each month is in now (months '
        "whose partition was dropped count their archive file). The table is "
        "lake.storage_usage() now.</p>\n"
        f'<div class="figure">{plot}\n'
        + _table(("storage", "bytes now"), now_rows, "storage")
        + "</div>\n"
        '<p class="note">Over time: bytes per tier and of the archive files, each day\'s last '
        "sample of the last 90 days (lake.figure_history).</p>\n"
        f'<div class="figure">{history}</div>'
    )


def _bridges(rows: list[Row], now: dt.datetime) -> str:
    if not rows:
        return _empty("No bridge has run yet (lake bridge).")
    return _table(
        ("bridge", "changes behind", "oldest unforwarded", "cursor last moved"),
        (
            (
                f'<span class="bridge">{_e(r["bridge"])}</span>',
                f'<span class="num">{_e(r["behind"])}</span>',
                _e(_duration(float(r["age_s"]))),
                _e(_when(r["advanced"])),
            )
            for r in rows
        ),
        "bridges",
    )


def _certificates(rows: list[Row], now: dt.datetime) -> str:
    if not rows:
        return _empty("No certificates yet (LAKE_HOME/tls holds none).")

    def cells(r: Row) -> tuple[str, ...]:
        if "error" in r:
            return (_e(r["file"]), f'<span class="status status-failed">{_e(r["error"])}</span>')
        left = r["not_after"] - now
        cls = "failed" if left.total_seconds() <= 0 else "ok"
        return (
            _e(r["file"]),
            _e(r["common_name"]) + (" (CA)" if r["is_ca"] else ""),
            _e(_when(r["not_after"])),
            f'<span class="status status-{cls}">{_e(_duration(left.total_seconds()))}</span>',
            f"<code>{_e(r['fingerprint'][:16])}…</code>",
        )

    return _table(
        ("file", "subject", "expires", "left", "SHA-256"),
        (cells(r) for r in rows),
        "certificates",
    )


# -- figures as text ---------------------------------------------------------------------------


def _when(moment: dt.datetime | None) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: float) -> str:
    sign = "-" if seconds < 0 else ""
    s = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{sign}{s / size:.1f} {unit}"
    return f"{sign}{s:.0f} s"


def _bytes(n: int | None) -> str:
    value = float(n or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


# -- plots (inline SVG) --------------------------------------------------------------------------


def _svg(kind: str, label: str, inner: Iterable[str], height: int = HEIGHT) -> str:
    return (
        f'<svg class="plot plot-{kind}" role="img" aria-label="{_e(label)}" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        'xmlns="http://www.w3.org/2000/svg">\n' + "\n".join(inner) + "\n</svg>"
    )


def _line_plot(series: dict[str, list[tuple[dt.date, float, str]]], what: str) -> str:
    """One line per series over the days, y from 0 to 1, a dot per day with data."""
    days = sorted({d for points in series.values() for d, _, _ in points})
    first, last = days[0], days[-1]
    span = max((last - first).days, 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(day: dt.date) -> float:
        if first == last:
            return LEFT + plot_w / 2
        return LEFT + plot_w * (day - first).days / span

    # From the quarter below the lowest score to 1: the axis is labelled, the lines stay apart.
    low = min(0.75, math.floor(min(v for p in series.values() for _, v, _ in p) * 4) / 4)

    def y(value: float) -> float:
        return TOP + plot_h * (1 - value) / (1 - low)

    parts = []
    step = 0.25 if low < 0.75 else 0.05
    for tick in (low + step * k for k in range(round((1 - low) / step) + 1)):
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" '
            f'y2="{y(tick):.1f}"/><text class="tick" x="{LEFT - 6}" y="{y(tick) + 4:.1f}" '
            f'text-anchor="end">{tick:.2f}</text>'
        )
    for day in _date_ticks(days):
        # the first and last labels inside the plot's edges, not cut by them
        anchor = "start" if day == first != last else "end" if day == last != first else "middle"
        parts.append(
            f'<text class="tick" x="{x(day):.1f}" y="{HEIGHT - BOTTOM + 16}" '
            f'text-anchor="{anchor}">{_e(day.isoformat())}</text>'
        )
    for i, (name, points) in enumerate(sorted(series.items())):
        colour = PALETTE[i % len(PALETTE)]
        coords = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v, _ in points)
        parts.append(
            f'<g class="series" data-series="{_e(name)}">'
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>'
        )
        for d, v, note in points:
            parts.append(
                f'<circle class="point" cx="{x(d):.1f}" cy="{y(v):.1f}" r="4" fill="{colour}" '
                f'data-x="{_e(d.isoformat())}" data-y="{v:.4f}">'
                f"<title>{_e(name)} {_e(d.isoformat())}: {what} {v:.3f} ({_e(note)})</title>"
                "</circle>"
            )
        parts.append("</g>")
        # the legend: four names a row, as many rows as needed
        parts.append(
            f'<text class="legend" x="{LEFT + 8 + 170 * (i % 4)}" y="{HEIGHT - 6 + 16 * (i // 4)}"'
            f' fill="{colour}">■ {_e(_short(name, 22))}<title>{_e(name)}</title></text>'
        )
    return _svg("line", f"{what} per day", parts, HEIGHT + 16 * ((len(series) - 1) // 4))


def _short(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def _date_ticks(days: list[dt.date], most: int = 6) -> list[dt.date]:
    if len(days) <= most:
        return days
    step = (len(days) - 1) / (most - 1)
    return [days[round(i * step)] for i in range(most)]


def _bar_plot(bars: list[tuple[str, int, Row]]) -> str:
    """Horizontal bars, one per (label, count), longest first."""
    bar_h, gap, label_w = 22, 6, 300
    height = TOP + len(bars) * (bar_h + gap) + 8
    top = max(n for _, n, _ in bars) or 1
    plot_w = WIDTH - label_w - RIGHT - 40
    parts = []
    for i, (label, n, row) in enumerate(bars):
        y0 = TOP + i * (bar_h + gap)
        w = max(plot_w * n / top, 1.0)
        parts.append(
            f'<text class="label" x="{label_w - 8}" y="{y0 + 15}" text-anchor="end">'
            f"{_e(_short(label, 46))}</text>"
            f'<rect class="bar" x="{label_w}" y="{y0}" width="{w:.1f}" height="{bar_h}" '
            f'fill="{PALETTE[0]}" data-dataset="{_e(row["dataset"])}" '
            f'data-rule="{_e(row["rule"])}" data-value="{n}">'
            f"<title>{_e(row['dataset'])} · {_e(row['rule'])}: {n}</title></rect>"
            f'<text class="value" x="{label_w + w + 6:.1f}" y="{y0 + 15}">{n}</text>'
        )
    return _svg("bars", "quarantine items pending by rule", parts, height)


def _stacked_plot(months: dict[dt.date, dict[str, int]], unit: str = "month") -> str:
    """A column per month (or day), stacked by tier."""
    fmt = "%Y-%m" if unit == "month" else "%Y-%m-%d"
    order = sorted(months)
    tiers = [t for t in TIER_COLOURS if any(t in m for m in months.values())]
    tiers += sorted({t for m in months.values() for t in m} - set(tiers))
    top = max(sum(m.values()) for m in months.values()) or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(order)
    bar_w = min(slot * 0.7, 60)
    parts = [
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">{_e(_bytes(top))}'
        f'</text><text class="tick" x="{LEFT - 6}" y="{TOP + plot_h + 4}" text-anchor="end">0'
        f'</text><line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" '
        f'y2="{TOP + plot_h}"/>'
    ]
    for i, month in enumerate(order):
        x0 = LEFT + slot * i + (slot - bar_w) / 2
        base = float(TOP + plot_h)
        for tier in tiers:
            n = months[month].get(tier, 0)
            if not n:
                continue
            h = max(plot_h * n / top, 1.0)
            base -= h
            parts.append(
                f'<rect class="bar" x="{x0:.1f}" y="{base:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{TIER_COLOURS.get(tier, "#666666")}" '
                f'data-{unit}="{_e(month.strftime(fmt))}" data-tier="{_e(tier)}" '
                f'data-value="{n}"><title>{_e(month.strftime(fmt))} {_e(tier)}: '
                f"{_e(_bytes(n))}</title></rect>"
            )
        if i % -(-len(order) // 8) == 0:  # at most 8 labels
            parts.append(
                f'<text class="tick" x="{x0 + bar_w / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" '
                f'text-anchor="middle">{_e(month.strftime(fmt))}</text>'
            )
    for i, tier in enumerate(tiers):
        parts.append(
            f'<text class="legend" x="{LEFT + 8 + 110 * i}" y="{HEIGHT - 6}" '
            f'fill="{TIER_COLOURS.get(tier, "#666666")}">■ {_e(tier)}</text>'
        )
    label = "bytes per month of data by tier" if unit == "month" else "bytes by tier per day"
    return _svg("stacked", label, parts)
