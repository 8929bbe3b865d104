"""Server-rendered SVG trend charts: severity bands labelled in text, the baseline, the
response and remission lines, and a marker for each treatment session."""

from html import escape

from django.utils.safestring import SafeString, mark_safe

W, H = 760, 280
LEFT, RIGHT, TOP, BOTTOM = 44, 170, 14, 40


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def trend_svg(history, treatments, tz, *, compact: bool = False, chart_id: str = "") -> SafeString:
    inst = history.instrument
    lo, hi = inst.score_range
    points = [(a.taken_at, a.total) for a in history.rows if a.total is not None]
    if not points:
        return mark_safe("")
    times = [t for t, _ in points] + list(treatments)
    t0, t1 = min(times), max(times)
    span = (t1 - t0).total_seconds() or 86400.0
    width = W if not compact else 520
    height = H if not compact else 200
    pw, ph = width - LEFT - RIGHT, height - TOP - BOTTOM

    def x(t):
        return LEFT + pw * (t - t0).total_seconds() / span

    def y(v):
        return TOP + ph * (1 - (v - lo) / ((hi - lo) or 1))

    title_id = f"{chart_id or inst.code}-title"
    desc_id = f"{chart_id or inst.code}-desc"
    latest = points[-1]
    desc = (
        f"{len(points)} scores from {points[0][0].astimezone(tz):%Y-%m-%d} to "
        f"{latest[0].astimezone(tz):%Y-%m-%d}; latest {latest[1]}"
        + (f" ({history.newest.severity})" if history.newest.severity else "")
        + f"; {len(treatments)} treatment sessions marked."
    )
    out = [
        f'<svg class="trend" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-labelledby="{title_id} {desc_id}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{title_id}">{escape(inst.short_name)} over time</title>',
        f'<desc id="{desc_id}">{escape(desc)}</desc>',
    ]
    # Severity bands, labelled in text at the right (colour is never the only signal).
    for i, band in enumerate(inst.bands):
        top, bottom = y(min(band.high + (1 if band.high < hi else 0), hi)), y(band.low)
        out.append(
            f'<rect class="band band-{i % 5}" x="{LEFT}" y="{top:.1f}" width="{pw}" '
            f'height="{max(bottom - top, 0):.1f}"/>'
        )
        mid = (top + bottom) / 2 + 4
        out.append(
            f'<text class="band-label" x="{LEFT + pw + 6}" y="{mid:.1f}">'
            f"{band.low}–{band.high} {escape(band.label)}</text>"
        )
    # Axes and y ticks at the band edges.
    out.append(
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + ph}"/>'
        f'<line class="axis" x1="{LEFT}" y1="{TOP + ph}" x2="{LEFT + pw}" y2="{TOP + ph}"/>'
    )
    ticks = sorted({lo, hi, *(b.low for b in inst.bands)})
    for v in ticks:
        out.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v}</text>'
        )
    out.append(
        f'<text class="tick" x="{LEFT}" y="{height - 6}">{points[0][0].astimezone(tz):%Y-%m-%d}</text>'
        f'<text class="tick" x="{LEFT + pw}" y="{height - 6}" text-anchor="end">'
        f"{t1.astimezone(tz):%Y-%m-%d}</text>"
    )
    # Baseline, response and remission lines.
    series = history.series
    if series is not None and series.baseline is not None:
        b = series.baseline[1]
        out.append(_hline("baseline", y(b), pw, f"Baseline {b}"))
        if inst.response_fall_pct is not None and b > 0:
            r = b * (100 - inst.response_fall_pct) / 100
            out.append(_hline("response", y(r), pw, f"Response ≤ {_fmt(r)}"))
    if inst.remission is not None:
        cut = inst.remission
        v = cut.value + (0.0 if cut.inclusive else -0.5)
        label = f"Remission ≤ {cut.value}" if cut.inclusive else f"Remission < {cut.value}"
        out.append(_hline("remission", y(max(v, lo)), pw, label))
    # Treatment markers along the time axis.
    for t in treatments:
        if t0 <= t <= t1:
            tx = x(t)
            out.append(
                f'<path class="treatment" d="M{tx:.1f} {TOP + ph + 2} l-4 8 h8 z">'
                f"<title>Treatment session {t.astimezone(tz):%Y-%m-%d %H:%M}</title></path>"
            )
    # The scores.
    path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points)
    out.append(f'<polyline class="series" points="{path}"/>')
    for adm in history.rows:
        if adm.total is None:
            continue
        flagged = " flagged" if adm.is_suicidality else ""
        out.append(
            f'<circle class="point{flagged}" cx="{x(adm.taken_at):.1f}" cy="{y(adm.total):.1f}" r="3">'
            f"<title>{adm.taken_at.astimezone(tz):%Y-%m-%d %H:%M}: {adm.total}"
            f"{' (' + escape(adm.severity) + ')' if adm.severity else ''}"
            f"{' — suicidality flag' if flagged else ''}</title></circle>"
        )
    if treatments:
        out.append(
            f'<text class="legend" x="{LEFT + pw + 6}" y="{TOP + ph + 10}">▲ treatment session</text>'
        )
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 (every text above is escaped)


def _hline(kind: str, yy: float, pw: int, label: str) -> str:
    return (
        f'<line class="ref {kind}" x1="{LEFT}" y1="{yy:.1f}" x2="{LEFT + pw}" y2="{yy:.1f}"/>'
        f'<text class="ref-label {kind}" x="{LEFT + 4}" y="{yy - 3:.1f}">{escape(label)}</text>'
    )
