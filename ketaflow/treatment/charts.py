"""Server-rendered SVG of the session's vital signs, infusion period shaded, text labels."""

import datetime

from django.utils.html import escape

W, H, L, R, T, B = 720, 260, 44, 16, 16, 34
MIN_SPAN_SECONDS = 30 * 60
SERIES = [
    ("systolic", "Systolic", "kf-sys", "▲"),
    ("diastolic", "Diastolic", "kf-dia", "▼"),
    ("heart_rate", "HR", "kf-hr", "●"),
    ("spo2", "SpO2", "kf-spo2", "■"),
]


def vitals_svg(vitals, *, start, end, dose_start=None, dose_end=None, tz, chart_id="vitals"):
    if not vitals:
        return ""
    # At least half an hour wide, so that readings minutes apart and the time labels of a
    # session just begun do not pile up on each other.
    span = max((end - start).total_seconds(), MIN_SPAN_SECONDS)
    lo, hi = 40, 220

    def x(t):
        return L + (W - L - R) * max(0.0, min(1.0, (t - start).total_seconds() / span))

    def y(v):
        return T + (H - T - B) * (1 - (min(max(v, lo), hi) - lo) / (hi - lo))

    parts = [
        f'<svg class="kf-vitals-chart" viewBox="0 0 {W} {H}" role="img" '
        f'aria-labelledby="{chart_id}-t" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{chart_id}-t">Vital signs over the session (BP mmHg, HR /min, SpO2 %)</title>'
    ]
    if dose_start:
        x1, x2 = x(dose_start), x(dose_end or end)
        parts.append(
            f'<rect class="kf-dose-band" x="{x1:.1f}" y="{T}" width="{max(x2 - x1, 2):.1f}" '
            f'height="{H - T - B}"/><text class="kf-axis" x="{x1 + 3:.1f}" y="{T + 12}">'
            "dosing</text>"
        )
    for v in (60, 100, 140, 180, 220):
        parts.append(
            f'<line class="kf-grid" x1="{L}" x2="{W - R}" y1="{y(v):.1f}" y2="{y(v):.1f}"/>'
            f'<text class="kf-axis" x="{L - 4}" y="{y(v) + 4:.1f}" text-anchor="end">{v}</text>'
        )
    for i in range(5):
        t = start + datetime.timedelta(seconds=span * i / 4)
        parts.append(
            f'<text class="kf-axis" x="{x(t):.1f}" y="{H - 12}" text-anchor="middle">'
            f"{t.astimezone(tz):%H:%M}</text>"
        )
    for key, label, css, mark in SERIES:
        pts = [(x(r.at), y(getattr(r, key))) for r in vitals if getattr(r, key) is not None]
        if not pts:
            continue
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
        parts.append(f'<polyline class="kf-line {css}" points="{path}"/>')
        for px, py in pts:
            parts.append(
                f'<text class="kf-mark {css}" x="{px:.1f}" y="{py + 4:.1f}" '
                f'text-anchor="middle">{mark}</text>'
            )
        lx, ly = pts[-1]
        parts.append(
            f'<text class="kf-label {css}" x="{min(lx + 8, W - R - 40):.1f}" y="{ly - 6:.1f}">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
