"""Outcome rules: change from baseline, response, remission, reliable change, and
time-series rules (rapid response, relapse).

Definitions (clinical reference §5, "Outcome terms"):
- baseline = last score before the first treatment of a course;
- response = at least 50% fall from baseline;
- partial response = 25-50% fall (here: at least 25% and less than 50%, so a 50%
  fall is a response, not a partial response);
- remission = below the instrument's cut-off;
- relapse = loses response after having it;
- rapid response = response within 24 h of the first treatment.

A rule is applied only where the reference documents it for the instrument
(Instrument.response_fall_pct, .remission, .reliable_change); otherwise the
result is None and the rule text says why. Every result carries the text of the
rule that produced it, for display on badges.

Arithmetic on the thresholds is done in integers (e.g. response when
2 × fall ≥ baseline), so a rounded percentage can never flip a decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from .model import Instrument
from .registry import get

RAPID_RESPONSE_WINDOW = timedelta(hours=24)
MINUS = "−"  # U+2212, for display


def _pct_text(baseline: int, follow_up: int) -> str:
    if baseline == 0:
        return "percent change undefined from a baseline of 0"
    pct = Decimal(100 * (follow_up - baseline)) / Decimal(baseline)
    rounded = abs(pct).quantize(Decimal("1"), rounding=ROUND_HALF_UP)
    sign = MINUS if pct < 0 else ("+" if pct > 0 else "")
    return f"{sign}{rounded}%"


def _resolve(instrument: Instrument | str) -> Instrument:
    return instrument if isinstance(instrument, Instrument) else get(instrument)


def _check_total(inst: Instrument, name: str, value: object) -> int:
    if inst.score_range is None:
        raise ValueError(f"{inst.short_name} has no total score, so it has no outcome rules")
    lo, hi = inst.score_range
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(
            f"{name} must be a whole-number {inst.short_name} total from {lo} to {hi}, "
            f"got {value!r}"
        )
    return value


@dataclass(frozen=True)
class Outcome:
    instrument: str
    baseline: int
    follow_up: int
    change: int  # follow_up - baseline
    percent_change: float | None  # None when baseline is 0
    response: bool | None
    partial_response: bool | None
    remission: bool | None
    reliable_improvement: bool | None
    reliable_deterioration: bool | None
    # rule name -> the text that produced the result (for badges)
    rules: dict[str, str] = field(default_factory=dict)


def compare(
    instrument: Instrument | str,
    baseline: int,
    follow_up: int,
    *,
    remission_cutoff: int | None = None,
    reliable_change_threshold: int | None = None,
) -> Outcome:
    """Outcome of one follow-up score against the baseline score.

    remission_cutoff: clinic setting, allowed only where the reference makes the
        remission cut-off a setting (MADRS: default 10, esketamine trials 12).
    reliable_change_threshold: required where the reference gives only a range
        (PCL-5: 5-10 points) and must lie inside it; otherwise not allowed to differ
        from the documented value.
    """
    inst = _resolve(instrument)
    b = _check_total(inst, "baseline", baseline)
    f = _check_total(inst, "follow-up", follow_up)
    name = inst.short_name
    rules: dict[str, str] = {}
    change = f - b
    percent = None if b == 0 else 100.0 * change / b
    pct = _pct_text(b, f)

    # Response and partial response (lower-is-better scales with a documented rule).
    response: bool | None
    partial: bool | None
    if inst.response_fall_pct is None:
        response = partial = None
        rules["response"] = f"No response rule is documented for {name}"
        rules["partial_response"] = f"No partial-response rule is documented for {name}"
    elif b == 0:
        response = partial = None
        rules["response"] = f"Response undefined: {name} baseline is 0"
        rules["partial_response"] = f"Partial response undefined: {name} baseline is 0"
    else:
        fall = b - f
        need = inst.response_fall_pct
        response = 100 * fall >= need * b
        if response:
            rules["response"] = f"Response: {name} fell ≥{need}% from baseline {b} to {f} ({pct})"
        else:
            rules["response"] = (
                f"No response: {name} went from baseline {b} to {f} ({pct}); "
                f"response needs a fall of ≥{need}%"
            )
        lo, hi = inst.partial_response_fall_pct or (None, None)
        if lo is None or hi is None:
            partial = None
            rules["partial_response"] = f"No partial-response rule is documented for {name}"
        else:
            partial = 100 * fall >= lo * b and 100 * fall < hi * b
            if response:
                rules["partial_response"] = (
                    f"Not a partial response: {name} fell ≥{hi}% from baseline {b} to {f} "
                    f"({pct}), which is a response"
                )
            elif partial:
                rules["partial_response"] = (
                    f"Partial response: {name} fell {lo}-{hi}% from baseline {b} to {f} ({pct})"
                )
            else:
                rules["partial_response"] = (
                    f"No partial response: {name} went from baseline {b} to {f} ({pct}); "
                    f"partial response is a fall of at least {lo}% and less than {hi}%"
                )

    # Remission.
    remission: bool | None
    cut = inst.remission
    if cut is None:
        if remission_cutoff is not None:
            raise ValueError(f"{name} has no documented remission cut-off to change")
        remission = None
        rules["remission"] = f"No remission cut-off is documented for {name}"
    else:
        value = cut.value
        if remission_cutoff is not None and remission_cutoff != cut.value:
            if not cut.setting:
                raise ValueError(
                    f"the {name} remission cut-off is fixed by the reference ({cut.text})"
                )
            value = _check_total(inst, "remission cut-off", remission_cutoff)
        rule = f"total {value} or less" if cut.inclusive else f"total below {value}"
        if cut.setting:
            rule += f" (clinic setting; {cut.note})" if cut.note else " (clinic setting)"
        remission = cut.met_below(f, value)
        rules["remission"] = (
            f"Remission: {name} {f}, {rule}"
            if remission
            else f"No remission: {name} {f}; needs {rule}"
        )

    # Reliable (or meaningful) change.
    improve: bool | None
    worsen: bool | None
    rc = inst.reliable_change
    if rc is None:
        if reliable_change_threshold is not None:
            raise ValueError(f"{name} has no documented reliable-change threshold")
        improve = worsen = None
        rules["reliable_change"] = f"No reliable-change threshold is documented for {name}"
    else:
        threshold: int | None
        if rc.is_range:
            threshold = reliable_change_threshold
            if threshold is not None and (
                isinstance(threshold, bool)
                or not isinstance(threshold, int)
                or not rc.low <= threshold <= rc.high
            ):
                raise ValueError(
                    f"{name} reliable-change threshold must be within {rc.low}-{rc.high} "
                    f"{rc.unit}, got {threshold!r}"
                )
        else:
            if reliable_change_threshold not in (None, rc.low):
                raise ValueError(f"the {name} reliable-change threshold is fixed: {rc.text}")
            threshold = rc.low
        if threshold is None:
            improve = worsen = None
            rules["reliable_change"] = (
                f"Reliable change not assessed: the reference gives only a range for {name} "
                f"({rc.text}); set a clinic threshold"
            )
        else:
            better = -change if inst.direction == "lower_is_better" else change
            improve = better >= threshold
            worsen = -better >= threshold
            moved = "fell" if change < 0 else ("rose" if change > 0 else "did not change")
            amount = f" {abs(change)} {rc.unit}" if change else ""
            basis = f"threshold {threshold} {rc.unit}"
            if rc.is_range:
                basis += f", clinic setting within {rc.low}-{rc.high}"
            if improve:
                label = "Reliable improvement"
            elif worsen:
                label = "Reliable deterioration"
            else:
                label = "No reliable change"
            rules["reliable_change"] = (
                f"{label}: {name} {moved}{amount} from baseline {b} to {f} ({basis})"
            )

    return Outcome(
        instrument=inst.code,
        baseline=b,
        follow_up=f,
        change=change,
        percent_change=percent,
        response=response,
        partial_response=partial,
        remission=remission,
        reliable_improvement=improve,
        reliable_deterioration=worsen,
        rules=rules,
    )


def baseline_of(
    scores: Sequence[tuple[datetime, int]], first_treatment: datetime
) -> tuple[datetime, int] | None:
    """The last score taken before (or at) the first treatment of the course.

    A score stamped exactly at the first treatment's start counts as a pre-dose
    baseline. Of several scores with the same latest time, the last in the list
    wins. None when no score precedes the first treatment.
    """
    before = [(i, ts, total) for i, (ts, total) in enumerate(scores) if ts <= first_treatment]
    if not before:
        return None
    _, ts, total = max(before, key=lambda row: (row[1], row[0]))
    return (ts, total)


@dataclass(frozen=True)
class SeriesOutcome:
    instrument: str
    baseline: tuple[datetime, int] | None
    points: tuple[tuple[datetime, Outcome], ...]
    first_response_at: datetime | None
    rapid_response: bool | None
    relapse: bool | None
    relapsed_at: datetime | None
    rules: dict[str, str] = field(default_factory=dict)


def evaluate_series(
    instrument: Instrument | str,
    scores: Sequence[tuple[datetime, int]],
    first_treatment: datetime,
    *,
    remission_cutoff: int | None = None,
    reliable_change_threshold: int | None = None,
) -> SeriesOutcome:
    """Apply the outcome rules to every score after the first treatment.

    rapid_response: True if a score within 24 h after the first treatment meets the
        response rule; False if scores in that window exist but none does; None if
        there is no score in the window, no baseline, or no response rule.
    relapse: True once a score after the first response no longer meets the
        response rule (relapsed_at is that score's time); False if response was
        reached and kept; None if response was never reached or is undefined.
    """
    inst = _resolve(instrument)
    name = inst.short_name
    rules: dict[str, str] = {}
    base = baseline_of(scores, first_treatment)
    if base is None:
        rules["baseline"] = f"No {name} baseline: no score before the first treatment"
        return SeriesOutcome(inst.code, None, (), None, None, None, None, rules)
    rules["baseline"] = (
        f"Baseline: last {name} before the first treatment, {base[1]} at {base[0].isoformat()}"
    )
    after = sorted(
        ((ts, total) for ts, total in scores if ts > first_treatment), key=lambda p: p[0]
    )
    points = tuple(
        (
            ts,
            compare(
                inst,
                base[1],
                total,
                remission_cutoff=remission_cutoff,
                reliable_change_threshold=reliable_change_threshold,
            ),
        )
        for ts, total in after
    )

    defined = inst.response_fall_pct is not None and base[1] != 0
    first_response_at: datetime | None = None
    relapse: bool | None = None
    relapsed_at: datetime | None = None
    rapid: bool | None = None
    if not defined:
        why = (
            f"No response rule is documented for {name}"
            if inst.response_fall_pct is None
            else f"Response undefined: {name} baseline is 0"
        )
        rules["rapid_response"] = why
        rules["relapse"] = why
    else:
        for ts, out in points:
            if out.response and first_response_at is None:
                first_response_at = ts
            elif first_response_at is not None and not out.response and relapsed_at is None:
                relapsed_at = ts
                rules["relapse"] = f"Relapse: lost response at {ts.isoformat()}: " + out.rules[
                    "response"
                ].removeprefix("No response: ")
        if first_response_at is None:
            rules["relapse"] = f"Relapse does not apply: no {name} response yet"
        elif relapsed_at is None:
            relapse = False
            rules["relapse"] = (
                f"No relapse: {name} response kept since {first_response_at.isoformat()}"
            )
        else:
            relapse = True

        window_end = first_treatment + RAPID_RESPONSE_WINDOW
        in_window = [(ts, out) for ts, out in points if ts <= window_end]
        if not in_window:
            rules["rapid_response"] = (
                f"Rapid response not assessed: no {name} score within 24 h of the first treatment"
            )
        else:
            hit = next(((ts, out) for ts, out in in_window if out.response), None)
            rapid = hit is not None
            if hit is not None:
                hours = (hit[0] - first_treatment) / timedelta(hours=1)
                rules["rapid_response"] = (
                    f"Rapid response: {hit[1].rules['response']}, {hours:g} h after the first "
                    "treatment (within 24 h)"
                )
            else:
                rules["rapid_response"] = (
                    f"No rapid response: no {name} score within 24 h of the first treatment "
                    "met the response rule"
                )

    return SeriesOutcome(
        instrument=inst.code,
        baseline=base,
        points=points,
        first_response_at=first_response_at,
        rapid_response=rapid,
        relapse=relapse,
        relapsed_at=relapsed_at,
        rules=rules,
    )
