"""Small accessible server-rendered SVG charts (no JavaScript, no dependencies)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from html import escape

import numpy as np

from .simulate import Prediction

CAPTION = "Population estimate, not a measurement"
PALETTE = ("#1f5fa8", "#b2472b", "#2d7d46", "#7a4fa3", "#8a6d00", "#444444")
_ids = itertools.count(1)


def _nice_step(span: float, target: int = 5) -> float:
    raw = span / max(target, 1)
    mag = 10 ** np.floor(np.log10(raw)) if raw > 0 else 1.0
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return float(m * mag)
    return float(10 * mag)


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v - round(v)) < 1e-9 else f"{v:g}"


def line_chart(
    series: Sequence[tuple[str, np.ndarray, np.ndarray]],
    *,
    title: str,
    desc: str,
    shade_range: tuple[float, float] | None = None,
    shade_label: str | None = None,
    markers: Iterable[tuple[float, str]] = (),
    bands: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = (),
    width: int = 640,
    height: int = 320,
    caption: str = CAPTION,
    x_label: str = "Time since first dose (h)",
    y_label: str = "Concentration (ng/mL)",
) -> str:
    """Line chart of ``(label, times_min, values)`` series; x axis shown in hours."""
    uid = f"pk{next(_ids)}"
    left, right, top, bottom = 64, 16, 28, 64
    pw, ph = width - left - right, height - top - bottom
    all_t = np.concatenate([s[1] for s in series] + [b[1] for b in bands]) / 60.0
    all_y = np.concatenate([s[2] for s in series] + [b[3] for b in bands])
    t_max = float(all_t.max()) if all_t.size else 1.0
    y_top = float(np.nanmax(all_y)) if all_y.size else 1.0
    if shade_range is not None:
        y_top = max(y_top, shade_range[1] * 1.1)
    y_top = max(y_top, 1e-9)
    ys = _nice_step(y_top)
    y_top = ys * np.ceil(y_top / ys)
    xs = _nice_step(t_max if t_max > 0 else 1.0, 6)
    t_top = xs * np.ceil(t_max / xs) if t_max > 0 else 1.0

    def X(h):
        return left + pw * np.asarray(h, float) / t_top

    def Y(v):
        return top + ph * (1.0 - np.clip(np.asarray(v, float), 0, y_top) / y_top)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" '
        f'aria-labelledby="{uid}-title {uid}-desc" font-family="sans-serif" font-size="12">',
        f'<title id="{uid}-title">{escape(title)}</title>',
        f'<desc id="{uid}-desc">{escape(desc)}</desc>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    if shade_range is not None:
        lo, hi = shade_range
        label = shade_label or f"Measured range {_fmt(lo)}–{_fmt(hi)} ng/mL"
        out.append(
            f'<rect x="{left}" y="{Y(hi):.1f}" width="{pw}" height="{Y(lo) - Y(hi):.1f}" '
            f'fill="#e8d9f2" stroke="none"><title>{escape(label)}</title></rect>'
        )
        out.append(
            f'<text x="{left + pw - 6}" y="{Y(hi) + 14:.1f}" text-anchor="end" '
            f'fill="#5a2d82">{escape(label)}</text>'
        )
    # grid and axes
    for v in np.arange(0, y_top + ys / 2, ys):
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" '
            f'stroke="#dddddd"/><text x="{left - 6}" y="{Y(v) + 4:.1f}" '
            f'text-anchor="end">{_fmt(v)}</text>'
        )
    for h in np.arange(0, t_top + xs / 2, xs):
        out.append(
            f'<line x1="{X(h):.1f}" x2="{X(h):.1f}" y1="{top + ph}" y2="{top + ph + 5}" '
            f'stroke="#333333"/><text x="{X(h):.1f}" y="{top + ph + 18}" '
            f'text-anchor="middle">{_fmt(h)}</text>'
        )
    out.append(f'<path d="M{left},{top} V{top + ph} H{left + pw}" fill="none" stroke="#333333"/>')
    out.append(
        f'<text x="{left + pw / 2:.1f}" y="{top + ph + 36}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
    )
    out.append(
        f'<text transform="translate(16 {top + ph / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    for i, (label, t, lo_, _med, hi_) in enumerate((b[0], b[1], b[2], b[3], b[4]) for b in bands):
        colour = PALETTE[i % len(PALETTE)]
        pts = [f"{X(a / 60):.1f},{Y(b):.1f}" for a, b in zip(t, hi_, strict=True)]
        pts += [f"{X(a / 60):.1f},{Y(b):.1f}" for a, b in zip(t[::-1], lo_[::-1], strict=True)]
        out.append(
            f'<polygon points="{" ".join(pts)}" fill="{colour}" fill-opacity="0.15" stroke="none">'
            f"<title>{escape(label)}</title></polygon>"
        )
    legend_y = top + 4
    for i, (label, t, v) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        dash = "" if i < len(PALETTE) else ' stroke-dasharray="4 3"'
        pts = " ".join(f"{X(a / 60):.1f},{Y(b):.1f}" for a, b in zip(t, v, strict=True))
        out.append(
            f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"{dash}>'
            f"<title>{escape(label)}</title></polyline>"
        )
        if len(series) > 1 or bands:
            ly = legend_y + 16 * i
            out.append(
                f'<line x1="{left + 10}" x2="{left + 28}" y1="{ly + 8}" y2="{ly + 8}" '
                f'stroke="{colour}" stroke-width="2"/><text x="{left + 32}" y="{ly + 12}">'
                f"{escape(label)}</text>"
            )
    for t_min, label in markers:
        x = X(float(t_min) / 60.0)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + ph}" stroke="#555555" '
            f'stroke-dasharray="3 3"><title>{escape(label)}</title></line>'
            f'<text x="{x + 3:.1f}" y="{top + 10}" fill="#333333">{escape(label)}</text>'
        )
    out.append(
        f'<text x="{left}" y="{height - 8}" fill="#333333" font-style="italic">'
        f"{escape(caption)}</text>"
    )
    out.append("</svg>")
    return "\n".join(out)


def svg_curve(
    prediction: Prediction,
    band=None,
    markers: Iterable[tuple[float, str]] | Mapping[float, str] | None = None,
    *,
    hours: float | None = None,
    width: int = 640,
    height: int = 320,
    show_metabolite: bool = False,
) -> str:
    """Accessible SVG of one prediction's curve.

    ``band``: a :class:`~ketaflow.clinical.pk.reference.ReferenceBand` to shade; it must
    have been measured for the prediction's drug and analyte (a ValueError otherwise), and
    is labelled with its sampling site.  No band is drawn unless one is given.  This
    function states no "falls below" time: for racemic ketamine that figure is a range
    across models (:func:`ketaflow.clinical.pk.reference.forecast`).
    ``markers``: ``(time_min, label)`` pairs (or a mapping) drawn as labelled
    vertical lines, e.g. planned blood-pressure readings.  The curve is evaluated
    exactly on a fine grid (not interpolated from the prediction's output times).
    """
    if band is not None:
        from .reference import check_band

        check_band(band, prediction.model)
    horizon = prediction.horizon_min if hours is None else hours * 60.0
    t = np.linspace(0.0, horizon, 721)
    t = np.unique(np.concatenate([t, [prediction.tmax_min]]))
    t = t[t <= horizon]
    series = [(prediction.analyte, t, prediction.concentration_at(t))]
    if show_metabolite and prediction.metabolite is not None:
        name = prediction.metabolite.name
        series.append((name, t, prediction.concentration_at(t, name)))
    if isinstance(markers, Mapping):
        markers = list(markers.items())
    dose = prediction.regimen
    if dose.nasal:
        dose_text = f"{dose.nasal_dose_mg:g} mg nasal"
    else:
        dose_text = f"{dose.iv_dose_mg(prediction.weight_kg):.4g} mg IV"
    # Models without a weight covariate (esketamine) predict the same for every weight.
    weight_text = "" if prediction.scaling == "none" else f", {prediction.weight_kg:g} kg"
    desc = (
        f"Predicted {prediction.analyte} plasma concentration for {dose_text} "
        f"({prediction.model.code} model{weight_text}). Peak "
        f"{prediction.cmax:.0f} ng/mL at {prediction.tmax_min:.0f} min."
    )
    if band is not None:
        desc += f" Shaded: {band.label}."
    desc += f" {CAPTION}."
    return line_chart(
        series,
        title=f"Predicted {prediction.analyte} concentration ({prediction.model.code})",
        desc=desc,
        shade_range=None if band is None else (band.low, band.high),
        shade_label=None if band is None else band.short_label,
        markers=markers or (),
        width=width,
        height=height,
    )
