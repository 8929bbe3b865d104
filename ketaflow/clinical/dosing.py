"""Dose calculator for ketamine (weight-based) and esketamine nasal spray.

Pure Python (no Django). Used by treatment plans, the session chart and ``ketaflow dose``.
Section numbers refer to ``/work/shared/clinical-reference.md`` ("the reference").

All arithmetic is exact decimal arithmetic (:class:`decimal.Decimal`); every result lists the
steps in words so a clinician can check them by hand.

Decisions taken where the reference is silent:

* Weight basis: the calculator does **not** convert weights. The caller passes the weight on the
  clinic's chosen basis (setting ``weight_basis``, default ``actual``; reference section 1: "No
  source fixes actual vs ideal vs adjusted body weight") and every result shows the basis.
* Rounding: to the nearest ``rounding_mg`` (setting, default 0.1 mg), halves up. If rounding up
  would take the dose above the clinic maximum, the dose is rounded *down* instead and the
  arithmetic says so; a dose that rounds to 0 mg is refused.
* The clinic's mg/kg maximum may be exceeded only with a written override reason of real
  length (at least ``OVERRIDE_REASON_MIN_CHARS`` = 20 characters and 3 words; "x" or "per MD"
  is not a justification), which the result records (reference section 4: "overrides need a
  written justification").
* Above the maximum stands an **absolute ceiling per session**, in mg/kg and in mg, for every
  weight-based route, that nothing exceeds (no override, no rounding). The medical director sets
  it in the clinic settings; the shipped defaults are justified in ``setting_sources()`` and
  docs/plans.md. The clinic maximum may not be set above the ceiling. Rounding never passes the
  ceiling (rounded down instead, as for the maximum).
* The dose actually given (``administered_mg``) is computed from what happened: an infusion from
  its start, rate changes, pauses and stop; devices given one by one; a single dose given. The
  difference from what was drawn is the unused drug to be wasted.
* Each weight-based route has a minimum observation after the dose ends (settings
  ``*_observation_min``), checked by ``observation_unmet`` before discharge. Esketamine keeps
  its at least 120 min from the first device (Spravato label and REMS), a treatment setting
  that cannot go below 120.
* The esketamine maximum (84 mg, the label's largest dose) cannot be overridden, nor can the
  28 mg device multiple.
* Minimum interval between doses: the reference fixes none; clinic setting, default 24 h (no two
  doses within a day; every schedule in the reference fits). A protocol may pass its own.
  Not overridable.
* Weight must be 25-350 kg, the reference's data-entry plausibility range (section 6).
* Infusion minutes outside the reported 2-100 min session lengths (section 1) give a warning,
  not a refusal. Below 1 minute or above a day (1440 min) the input is refused: these are
  sanity bounds on the entry (a rate over a fraction of a minute means a typing error), not
  clinical limits.
* Every number entered has at most 12 digits before the decimal point and 6 after it (a sanity
  bound: exact arithmetic in ``decimal``'s 28-digit context; ``1E+999999999`` or ``1e-22``
  are typing errors, refused naming the input).
* Display precision (not clinical limits): rate to 0.001 mg/min, volumes to 0.01 mL, pump rate to
  0.01 mL/h, each rounded halves up. The pump rate is computed from the drug volume as shown
  (the volume drawn up), so every arithmetic line can be checked by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

IV = "iv-ketamine"
IM = "im-ketamine"
SC = "sc-ketamine"
ORAL = "oral-ketamine"
ESKETAMINE = "esketamine-nasal"
WEIGHT_BASED_ROUTES = (IV, IM, SC, ORAL)
ROUTES = (*WEIGHT_BASED_ROUTES, ESKETAMINE)
INFUSION_ROUTES = (IV,)

WEIGHT_BASES = ("actual", "ideal", "adjusted")
_SHORT = {IV: "iv", IM: "im", SC: "sc", ORAL: "oral", ESKETAMINE: "esketamine"}

# Plausibility range for body weight (reference section 6, LOINC 29463-7: 25-350 kg).
WEIGHT_MIN_KG = Decimal(25)
WEIGHT_MAX_KG = Decimal(350)
SRC_WEIGHT = "Body weight input accepted 25-350 kg (clinical-reference.md section 6)"

# Esketamine nasal spray device facts (reference section 1, Spravato label).
ESKETAMINE_DEVICE_MG = Decimal(28)
ESKETAMINE_DEVICE_INTERVAL_MIN = 5
ESKETAMINE_LABEL_MAX_MG = Decimal(84)
ESKETAMINE_MONITORING_MIN = 120  # reference section 3: monitor at least 2 hours after dosing
SRC_ESKETAMINE = (
    "Spravato: one device = 28 mg; 56 mg = 2 devices, 84 mg = 3 devices, 5 min between "
    "devices; dose changes in 28 mg steps (clinical-reference.md section 1); monitor at least "
    "2 hours after dosing (section 3)"
)

# Reported IV session lengths (reference section 1): a warning outside, not a limit.
REPORTED_SESSION_MINUTES = (Decimal(2), Decimal(100))

# Sanity bounds on entered numbers and infusion times (not clinical limits; see above).
INPUT_MAX_WHOLE_DIGITS = 12
INPUT_MAX_DECIMAL_PLACES = 6
INFUSION_MINUTES_MIN = Decimal(1)
INFUSION_MINUTES_MAX = Decimal(24 * 60)

# An override reason of real length (a written justification, reference section 4): at least
# this many characters and words once surrounding and repeated whitespace is removed.
OVERRIDE_REASON_MIN_CHARS = 20
OVERRIDE_REASON_MIN_WORDS = 3

# Upper bounds a clinic's ceiling can never be raised past: the top of the Ketalar label's
# bolus *induction doses for anaesthesia* (IV 1-4.5 mg/kg, IM 6.5-13 mg/kg). A depression clinic
# never needs an anaesthetic induction dose; a ceiling set above it is a typing error.
LABEL_ANAESTHESIA_TOP_MG_PER_KG = {"iv": Decimal("4.5"), "im": Decimal("13")}

# Display precision (formatting, not clinical limits).
RATE_MG_PER_MIN_STEP = Decimal("0.001")
VOLUME_ML_STEP = Decimal("0.01")
RATE_ML_PER_H_STEP = Decimal("0.01")


class DoseError(ValueError):
    """A refused calculation. ``limit`` names the limit or input, e.g. ``max_mg_per_kg``."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(f"{limit}: {message}")
        self.limit = limit
        self.message = message


# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DosingSettings:
    """Per-clinic dose limits. ``setting_sources()`` gives each default's origin."""

    iv_max_mg_per_kg: Decimal = field(
        default=Decimal("1.0"),
        metadata={
            "source": (
                "Clinic setting, default 1.0 mg/kg: IV trials span 0.1 to 1.0 mg/kg "
                "(Fava et al. 2020; clinical-reference.md section 1)"
            )
        },
    )
    im_max_mg_per_kg: Decimal = field(
        default=Decimal("0.7"),
        metadata={
            "source": (
                "Clinic setting, default 0.7 mg/kg: IM clinics start near 0.5 mg/kg and rarely go "
                "above 0.7 mg/kg; 0.25-0.5 mg/kg IM matched 0.5 mg/kg IV at 2 h (Chilukuri et al., "
                "Indian J Psychol Med 2014)"
            )
        },
    )
    sc_max_mg_per_kg: Decimal = field(
        default=Decimal("0.9"),
        metadata={
            "source": (
                "Clinic setting, default 0.9 mg/kg: subcutaneous flexible dosing 0.5-0.9 mg/kg "
                "(Loo et al. 2023, KADS; clinical-reference.md section 1)"
            )
        },
    )
    oral_max_mg_per_kg: Decimal = field(
        default=Decimal("2.5"),
        metadata={
            "source": (
                "Clinic setting, default 2.5 mg/kg: oral 2.0-2.5 mg/kg approximates 0.5 mg/kg IV "
                "(Andrade, J Clin Psychiatry 2019). Doses used span 25-300 mg a session (Andrade "
                "2019; Lara et al. 2013): the oral ceiling keeps every dose within 300 mg."
            )
        },
    )
    iv_ceiling_mg_per_kg: Decimal = field(
        default=Decimal("2"),
        metadata={
            "source": (
                "Absolute ceiling (no override), default 2 mg/kg a session: twice the top of the IV "
                "trial range (0.1-1.0 mg/kg, Fava et al. 2020) and the level ketaflow's PK "
                "simulator refuses as a probable unit error. The Ketalar label's 1-4.5 mg/kg IV "
                "are bolus induction doses for anaesthesia, not a depression dose; the ceiling "
                "can never be set above 4.5 mg/kg."
            )
        },
    )
    iv_ceiling_mg: Decimal = field(
        default=Decimal("200"),
        metadata={
            "source": (
                "Absolute ceiling (no override), default 200 mg a session: clinic default, set by "
                "the medical director (2 mg/kg at 100 kg; 1.0 mg/kg, the top of the trial range, "
                "stays within it up to 200 kg)."
            )
        },
    )
    im_ceiling_mg_per_kg: Decimal = field(
        default=Decimal("1.0"),
        metadata={
            "source": (
                "Absolute ceiling (no override), default 1.0 mg/kg a session: twice the usual "
                "0.5 mg/kg start, above the 0.7 mg/kg clinics rarely exceed (Chilukuri et al. 2014). "
                "The Ketalar label's 6.5-13 mg/kg IM are bolus induction doses for anaesthesia; "
                "the ceiling can never be set above 13 mg/kg."
            )
        },
    )
    im_ceiling_mg: Decimal = field(
        default=Decimal("100"),
        metadata={
            "source": (
                "Absolute ceiling (no override), default 100 mg a session: clinic default, set by "
                "the medical director (1.0 mg/kg at 100 kg)."
            )
        },
    )
    sc_ceiling_mg_per_kg: Decimal = field(
        default=Decimal("1.0"),
        metadata={
            "source": (
                "Absolute ceiling (no override), default 1.0 mg/kg a session: just above the "
                "KADS flexible range 0.5-0.9 mg/kg (Loo et al., Br J Psychiatry 2023)."
            )
        },
    )
    sc_ceiling_mg: Decimal = field(
        default=Decimal("100"),
        metadata={
            "source": (
                "Absolute ceiling (no override), default 100 mg a session: clinic default, set by "
                "the medical director (1.0 mg/kg at 100 kg)."
            )
        },
    )
    oral_ceiling_mg_per_kg: Decimal = field(
        default=Decimal("7"),
        metadata={
            "source": (
                "Absolute ceiling (no override), default 7 mg/kg a session: the top of the oral/"
                "sublingual doses used, 0.25-7 mg/kg (Andrade 2019; Lara et al. 2013)."
            )
        },
    )
    oral_ceiling_mg: Decimal = field(
        default=Decimal("300"),
        metadata={
            "source": (
                "Absolute ceiling (no override), default 300 mg a session: the top of the oral "
                "doses used, 25-300 mg a session (Andrade 2019; Lara et al. 2013)."
            )
        },
    )
    esketamine_max_mg: Decimal = field(
        default=Decimal("84"),
        metadata={
            "source": (
                "Spravato label: largest dose 84 mg (3 devices) (clinical-reference.md section 1). "
                "A clinic may lower it (in 28 mg steps), never raise it."
            )
        },
    )
    rounding_mg: Decimal = field(
        default=Decimal("0.1"),
        metadata={
            "source": (
                "Clinic setting, default nearest 0.1 mg (e.g. 1 mg or 5 mg for the clinic's syringes)."
            )
        },
    )
    min_interval_hours: Decimal = field(
        default=Decimal("24"),
        metadata={
            "source": (
                "Clinic setting: the reference fixes no minimum interval between doses; default 24 h "
                "(no two doses within a day), which every schedule in clinical-reference.md section 2 "
                "and the esketamine schedule in section 1 respect."
            )
        },
    )
    iv_observation_min: Decimal = field(
        default=Decimal("30"),
        metadata={
            "source": (
                "Minimum observation after the infusion ends: 30 min, clinic default, set by the "
                "medical director. IV dissociation usually fades within about 20 min of stopping "
                "the drip; blood pressure is back to baseline within about 1.5 h (the other "
                "discharge criteria wait for it)."
            )
        },
    )
    im_observation_min: Decimal = field(
        default=Decimal("60"),
        metadata={
            "source": (
                "Minimum observation after the injection: 60 min, clinic default, set by the "
                "medical director (no published value for IM ketamine in depression)."
            )
        },
    )
    sc_observation_min: Decimal = field(
        default=Decimal("60"),
        metadata={
            "source": (
                "Minimum observation after the injection: 60 min, clinic default, set by the "
                "medical director (no published value for SC ketamine in depression)."
            )
        },
    )
    oral_observation_min: Decimal = field(
        default=Decimal("120"),
        metadata={
            "source": (
                "Minimum observation after the oral/sublingual dose: 120 min, clinic default, set "
                "by the medical director (absorption is slower than by injection; no published "
                "value)."
            )
        },
    )
    weight_basis: str = field(
        default="actual",
        metadata={
            "source": "Clinic setting, default actual body weight: no source fixes actual vs ideal "
            "vs adjusted body weight (clinical-reference.md section 1)"
        },
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name == "weight_basis":
                continue
            value = _decimal(getattr(self, f.name), f.name, "settings." + f.name)
            object.__setattr__(self, f.name, value)
            if f.name == "min_interval_hours":
                if value < 0:
                    raise DoseError("settings.min_interval_hours", "must not be negative")
            elif value <= 0:
                raise DoseError("settings." + f.name, "must be positive")
        if self.weight_basis not in WEIGHT_BASES:
            raise DoseError("settings.weight_basis", f"must be one of {list(WEIGHT_BASES)}")
        if self.esketamine_max_mg > ESKETAMINE_LABEL_MAX_MG:
            raise DoseError(
                "settings.esketamine_max_mg",
                f"cannot exceed the label maximum of {ESKETAMINE_LABEL_MAX_MG} mg",
            )
        if self.esketamine_max_mg % ESKETAMINE_DEVICE_MG != 0:
            raise DoseError("settings.esketamine_max_mg", "must be a multiple of 28 mg")
        for short in ("iv", "im", "sc", "oral"):
            maximum = getattr(self, f"{short}_max_mg_per_kg")
            ceiling = getattr(self, f"{short}_ceiling_mg_per_kg")
            if maximum > ceiling:
                raise DoseError(
                    f"settings.{short}_max_mg_per_kg",
                    f"the clinic maximum {fmt(maximum)} mg/kg cannot be above the absolute "
                    f"ceiling of {fmt(ceiling)} mg/kg",
                )
            top = LABEL_ANAESTHESIA_TOP_MG_PER_KG.get(short)
            if top is not None and ceiling > top:
                raise DoseError(
                    f"settings.{short}_ceiling_mg_per_kg",
                    f"cannot be above {fmt(top)} mg/kg, the top of the Ketalar label's "
                    "anaesthetic induction dose for this route",
                )

    def ceiling(self, route: str) -> tuple[Decimal, Decimal]:
        """The absolute ceiling per session for a weight-based route: (mg/kg, mg)."""
        short = _SHORT[route]
        return getattr(self, f"{short}_ceiling_mg_per_kg"), getattr(self, f"{short}_ceiling_mg")

    def observation_minutes(self, route: str) -> Decimal | None:
        """Minimum observation after the dose ends; None for esketamine, whose at least
        120 min from the first device (Spravato label and REMS) is the treatment setting
        ``esketamine_monitoring_minutes``, never below 120."""
        if route == ESKETAMINE:
            return None
        return getattr(self, f"{_SHORT[route]}_observation_min")

    def max_mg_per_kg(self, route: str) -> Decimal:
        return {
            IV: self.iv_max_mg_per_kg,
            IM: self.im_max_mg_per_kg,
            SC: self.sc_max_mg_per_kg,
            ORAL: self.oral_max_mg_per_kg,
        }[route]


def setting_sources() -> dict[str, str]:
    """Source text for every setting, for the settings page."""
    return {f.name: f.metadata["source"] for f in fields(DosingSettings)}


# ---------------------------------------------------------------------------
# Result
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Override:
    limit: str
    reason: str
    max_mg_per_kg: Decimal
    requested_mg_per_kg: Decimal

    def as_dict(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "reason": self.reason,
            "max_mg_per_kg": _json_number(self.max_mg_per_kg),
            "requested_mg_per_kg": _json_number(self.requested_mg_per_kg),
        }


@dataclass(frozen=True)
class DoseCalculation:
    route: str
    dose_mg: Decimal
    arithmetic: tuple[str, ...]
    rounding: dict[str, Any]
    weight_basis: str | None = None
    weight_kg: Decimal | None = None
    mg_per_kg: Decimal | None = None
    minutes: Decimal | None = None
    rate_mg_per_min: Decimal | None = None
    stock_mg_per_ml: Decimal | None = None
    drug_volume_ml: Decimal | None = None
    bag_ml: Decimal | None = None
    rate_ml_per_h: Decimal | None = None
    devices: int | None = None
    device_interval_min: int | None = None
    device_times_min: tuple[int, ...] | None = None
    minimum_monitoring_min: int | None = None
    override: Override | None = None
    override_reason: str | None = None
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict; numeric fields that do not apply to the route are left out."""
        out: dict[str, Any] = {"route": self.route, "dose_mg": _json_number(self.dose_mg)}
        for name in (
            "weight_kg",
            "mg_per_kg",
            "minutes",
            "rate_mg_per_min",
            "stock_mg_per_ml",
            "drug_volume_ml",
            "bag_ml",
            "rate_ml_per_h",
            "devices",
            "device_interval_min",
            "minimum_monitoring_min",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = _json_number(value)
        if self.device_times_min is not None:
            out["device_times_min"] = list(self.device_times_min)
        out["arithmetic"] = list(self.arithmetic)
        out["weight_basis"] = self.weight_basis
        out["rounding"] = {k: _json_number(v) for k, v in self.rounding.items()}
        out["override_reason"] = self.override_reason
        out["override"] = self.override.as_dict() if self.override else None
        out["warnings"] = list(self.warnings)
        return out


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _json_number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _decimal(value: Any, name: str, limit: str) -> Decimal:
    """Convert int/float/str/Decimal to a finite Decimal, or refuse naming the input."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise DoseError(limit, f"{name} must be a number")
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise DoseError(limit, f"{name} must be a number, not {value!r}") from None
    if not result.is_finite():
        raise DoseError(limit, f"{name} must be a finite number")
    # From the digit tuple, not through a decimal context: normalize() on 1E+999999999
    # raises decimal.Overflow.
    _, digits, exponent = result.as_tuple()
    n = len(digits)
    while n > 1 and digits[n - 1] == 0:
        n, exponent = n - 1, exponent + 1
    whole, places = (0, 0) if digits == (0,) else (max(n + exponent, 0), max(-exponent, 0))
    if whole > INPUT_MAX_WHOLE_DIGITS:
        raise DoseError(
            limit, f"{name} must have at most {INPUT_MAX_WHOLE_DIGITS} digits before the point"
        )
    if places > INPUT_MAX_DECIMAL_PLACES:
        raise DoseError(
            limit, f"{name} must have at most {INPUT_MAX_DECIMAL_PLACES} decimal places"
        )
    return result


def _positive(value: Any, name: str) -> Decimal:
    result = _decimal(value, name, name)
    if result <= 0:
        raise DoseError(name, f"{name} must be greater than 0 (got {fmt(result)})")
    return result


def fmt(value: Decimal | int) -> str:
    """Plain decimal text without exponent or trailing zeros: 35.0 → '35', 0.8750 → '0.875'."""
    d = Decimal(value).normalize()
    text = format(d, "f")
    return "0" if text in ("-0", "") else text


def _quantize(value: Decimal, step: Decimal, rounding: str = ROUND_HALF_UP) -> Decimal:
    """Round to a multiple of ``step`` (works for steps like 5, not only powers of ten)."""
    return (value / step).to_integral_value(rounding=rounding) * step


def _check_interval(
    last_dose_at: datetime | None,
    now: datetime | None,
    min_interval_hours: Any,
    settings: DosingSettings,
    arithmetic: list[str],
) -> None:
    if last_dose_at is None:
        return
    if not isinstance(last_dose_at, datetime):
        raise DoseError("last_dose_at", "last_dose_at must be a date and time")
    if now is None:
        now = datetime.now(tz=last_dose_at.tzinfo)
    if not isinstance(now, datetime):
        raise DoseError("now", "now must be a date and time")
    if (last_dose_at.tzinfo is None) != (now.tzinfo is None):
        raise DoseError(
            "last_dose_at", "last_dose_at and now must both carry a time zone, or neither"
        )
    hours = (
        settings.min_interval_hours
        if min_interval_hours is None
        else _decimal(min_interval_hours, "min_interval_hours", "min_interval_hours")
    )
    if hours < 0:
        raise DoseError("min_interval_hours", "min_interval_hours must not be negative")
    elapsed = now - last_dose_at
    if elapsed < timedelta(0):
        raise DoseError("last_dose_at", "last_dose_at is in the future")
    elapsed_h = Decimal(int(elapsed.total_seconds())) / Decimal(3600)
    if elapsed < timedelta(hours=float(hours)):
        raise DoseError(
            "min_interval",
            f"only {fmt(_quantize(elapsed_h, Decimal('0.1')))} h since the last dose; the minimum "
            f"interval between doses is {fmt(hours)} h",
        )
    arithmetic.append(
        f"Interval since last dose {fmt(_quantize(elapsed_h, Decimal('0.1')))} h ≥ minimum "
        f"{fmt(hours)} h"
    )


def check_override_reason(reason: str | None) -> str:
    """A written justification of real length, or DoseError("override_reason")."""
    text = " ".join((reason or "").split())
    if len(text) < OVERRIDE_REASON_MIN_CHARS or len(text.split()) < OVERRIDE_REASON_MIN_WORDS:
        raise DoseError(
            "override_reason",
            f"an override reason must be a written justification of at least "
            f"{OVERRIDE_REASON_MIN_CHARS} characters and {OVERRIDE_REASON_MIN_WORDS} words "
            f"(got {len(text)} characters)",
        )
    return text


#: Alias kept for callers that think of these as limits.
DoseLimits = DosingSettings
DEFAULTS = DosingSettings()


# ---------------------------------------------------------------------------
# Weight-based ketamine
# ---------------------------------------------------------------------------


def calculate_weight_based(
    route: str,
    weight_kg: Any,
    mg_per_kg: Any,
    minutes: Any = None,
    stock_mg_per_ml: Any = None,
    bag_ml: Any = None,
    override_reason: str | None = None,
    last_dose_at: datetime | None = None,
    now: datetime | None = None,
    min_interval_hours: Any = None,
    settings: DosingSettings = DEFAULTS,
) -> DoseCalculation:
    """Dose, infusion rate and volumes for iv/im/sc/oral racemic ketamine dosed in mg/kg.

    ``weight_kg`` is on the clinic's weight basis (``settings.weight_basis``); it is not
    converted. IV needs ``minutes`` (infusion time); ``bag_ml`` needs ``stock_mg_per_ml``.
    Raises :class:`DoseError` on any refusal.
    """
    if route not in WEIGHT_BASED_ROUTES:
        raise DoseError(
            "route", f"route must be one of {list(WEIGHT_BASED_ROUTES)} (got {route!r})"
        )
    weight = _decimal(weight_kg, "weight_kg", "weight_kg")
    if not WEIGHT_MIN_KG <= weight <= WEIGHT_MAX_KG:
        raise DoseError(
            "weight_kg",
            f"weight {fmt(weight)} kg is outside {fmt(WEIGHT_MIN_KG)}-{fmt(WEIGHT_MAX_KG)} kg; "
            "check the entry",
        )
    per_kg = _positive(mg_per_kg, "mg_per_kg")

    warnings: list[str] = []
    mins: Decimal | None = None
    if route in INFUSION_ROUTES:
        if minutes is None:
            raise DoseError(
                "minutes", "IV ketamine is an infusion: give the infusion time in minutes"
            )
        mins = _positive(minutes, "minutes")
        if not INFUSION_MINUTES_MIN <= mins <= INFUSION_MINUTES_MAX:
            raise DoseError(
                "minutes",
                f"infusion time {fmt(mins)} min is outside {fmt(INFUSION_MINUTES_MIN)}-"
                f"{fmt(INFUSION_MINUTES_MAX)} min; check the entry",
            )
        low, high = REPORTED_SESSION_MINUTES
        if not low <= mins <= high:
            warnings.append(
                f"Infusion time {fmt(mins)} min is outside the reported session lengths of "
                f"{fmt(low)}-{fmt(high)} min (clinical-reference.md section 1)."
            )
    elif minutes is not None:
        raise DoseError("minutes", f"infusion minutes apply to {IV} only, not {route}")

    stock = None if stock_mg_per_ml is None else _positive(stock_mg_per_ml, "stock_mg_per_ml")
    bag = None
    if bag_ml is not None:
        if route not in INFUSION_ROUTES:
            raise DoseError("bag_ml", f"a bag volume applies to {IV} only, not {route}")
        bag = _positive(bag_ml, "bag_ml")
        if stock is None:
            raise DoseError("stock_mg_per_ml", "a bag volume needs the stock concentration (mg/mL)")

    reason = " ".join((override_reason or "").split()) or None
    arithmetic: list[str] = []
    _check_interval(last_dose_at, now, min_interval_hours, settings, arithmetic)

    ceiling_per_kg, ceiling_mg = settings.ceiling(route)
    if per_kg > ceiling_per_kg:
        raise DoseError(
            "ceiling_mg_per_kg",
            f"{fmt(per_kg)} mg/kg is above the absolute ceiling of {fmt(ceiling_per_kg)} mg/kg a "
            f"session for {route}; no override can pass it (the medical director sets the "
            "ceiling in the clinic's dosing settings)",
        )

    max_per_kg = settings.max_mg_per_kg(route)
    override = None
    if per_kg > max_per_kg:
        if reason is None:
            raise DoseError(
                "max_mg_per_kg",
                f"{fmt(per_kg)} mg/kg is above the clinic maximum of {fmt(max_per_kg)} mg/kg for "
                f"{route}; a prescriber may exceed it (up to the absolute ceiling of "
                f"{fmt(ceiling_per_kg)} mg/kg) only with a written override reason",
            )
        check_override_reason(reason)
        override = Override("max_mg_per_kg", reason, max_per_kg, per_kg)

    basis = settings.weight_basis
    unrounded = weight * per_kg
    arithmetic.insert(
        0, f"{fmt(weight)} kg ({basis} body weight) × {fmt(per_kg)} mg/kg = {fmt(unrounded)} mg"
    )
    if override:
        arithmetic.append(
            f"OVERRIDE: {fmt(per_kg)} mg/kg exceeds the clinic maximum {fmt(max_per_kg)} mg/kg; "
            f"reason: {reason}"
        )
    if unrounded > ceiling_mg:
        raise DoseError(
            "ceiling_mg",
            f"{fmt(unrounded)} mg is above the absolute ceiling of {fmt(ceiling_mg)} mg a session "
            f"for {route}; no override can pass it (the medical director sets the ceiling in the "
            "clinic's dosing settings)",
        )
    step = settings.rounding_mg
    dose = _quantize(unrounded, step)
    method = "nearest, halves up"
    # The largest dose rounding may reach: the clinic maximum (unless overridden) and always the
    # absolute ceiling, in mg/kg and in mg.
    limits = [(weight * ceiling_per_kg, "absolute ceiling", f"{fmt(ceiling_per_kg)} mg/kg")]
    limits.append((ceiling_mg, "absolute ceiling", f"{fmt(ceiling_mg)} mg"))
    if override is None:
        limits.append((weight * max_per_kg, "clinic maximum", f"{fmt(max_per_kg)} mg/kg"))
    cap, cap_name, cap_text = min(limits, key=lambda item: item[0])
    if dose > cap:
        dose = _quantize(unrounded, step, ROUND_FLOOR)
        method = f"down, because rounding to nearest would exceed the {cap_name}"
        arithmetic.append(
            f"Rounded down to {fmt(dose)} mg (multiple of {fmt(step)} mg): rounding to nearest "
            f"would exceed the {cap_name} {cap_text} = {fmt(cap)} mg"
        )
    else:
        arithmetic.append(f"Rounded to the nearest {fmt(step)} mg: {fmt(dose)} mg")
    if dose <= 0:
        raise DoseError(
            "dose_mg",
            f"{fmt(unrounded)} mg rounds to 0 mg at the clinic rounding of {fmt(step)} mg",
        )

    rate = volume = rate_ml_h = None
    if mins is not None:
        rate = _quantize(dose / mins, RATE_MG_PER_MIN_STEP)
        arithmetic.append(f"{fmt(dose)} mg ÷ {fmt(mins)} min = {fmt(rate)} mg/min")
    if stock is not None:
        volume = _quantize(dose / stock, VOLUME_ML_STEP)
        arithmetic.append(f"{fmt(dose)} mg ÷ {fmt(stock)} mg/mL = {fmt(volume)} mL of drug")
        if bag is not None and mins is not None:
            # Uses the drug volume as shown (and drawn up), so the line can be checked by hand.
            rate_ml_h = _quantize((bag + volume) / mins * 60, RATE_ML_PER_H_STEP)
            arithmetic.append(
                f"({fmt(bag)} mL bag + {fmt(volume)} mL drug) ÷ {fmt(mins)} min × 60 min/h = "
                f"{fmt(rate_ml_h)} mL/h"
            )

    return DoseCalculation(
        route=route,
        dose_mg=dose,
        arithmetic=tuple(arithmetic),
        rounding={
            "increment_mg": step,
            "unrounded_mg": unrounded,
            "dose_mg": dose,
            "method": method,
        },
        weight_basis=basis,
        weight_kg=weight,
        mg_per_kg=per_kg,
        minutes=mins,
        rate_mg_per_min=rate,
        stock_mg_per_ml=stock,
        drug_volume_ml=volume,
        bag_ml=bag,
        rate_ml_per_h=rate_ml_h,
        override=override,
        override_reason=reason,
        warnings=tuple(warnings),
    )


# ---------------------------------------------------------------------------
# Esketamine nasal spray
# ---------------------------------------------------------------------------


def calculate_esketamine(
    dose_mg: Any,
    last_dose_at: datetime | None = None,
    now: datetime | None = None,
    min_interval_hours: Any = None,
    settings: DosingSettings = DEFAULTS,
) -> DoseCalculation:
    """Devices and timing for an esketamine nasal spray dose (28 mg per device).

    Refuses (no override) a dose that is not a whole number of 28 mg devices or that is above
    ``settings.esketamine_max_mg`` (label maximum 84 mg).
    """
    dose = _positive(dose_mg, "dose_mg")
    if dose % ESKETAMINE_DEVICE_MG != 0:
        raise DoseError(
            "esketamine_multiple",
            f"{fmt(dose)} mg is not a whole number of 28 mg devices (use 28, 56 or 84 mg)",
        )
    if dose > settings.esketamine_max_mg:
        raise DoseError(
            "esketamine_max",
            f"{fmt(dose)} mg is above the esketamine maximum of {fmt(settings.esketamine_max_mg)} mg "
            "(label maximum 84 mg; cannot be overridden)",
        )
    arithmetic: list[str] = []
    _check_interval(last_dose_at, now, min_interval_hours, settings, arithmetic)
    devices = int(dose / ESKETAMINE_DEVICE_MG)
    times = tuple(i * ESKETAMINE_DEVICE_INTERVAL_MIN for i in range(devices))
    arithmetic.insert(0, f"{fmt(dose)} mg ÷ 28 mg per device = {devices} device(s)")
    arithmetic.append(
        f"One device every {ESKETAMINE_DEVICE_INTERVAL_MIN} min (2 sprays, one per nostril): "
        + ", ".join(f"{t} min" for t in times)
    )
    arithmetic.append(f"Monitor at least {ESKETAMINE_MONITORING_MIN} min after dosing")
    return DoseCalculation(
        route=ESKETAMINE,
        dose_mg=dose,
        arithmetic=tuple(arithmetic),
        rounding={"method": "none: esketamine is given in whole 28 mg devices"},
        weight_basis=None,
        devices=devices,
        device_interval_min=ESKETAMINE_DEVICE_INTERVAL_MIN,
        device_times_min=times,
        minimum_monitoring_min=ESKETAMINE_MONITORING_MIN,
    )


# ---------------------------------------------------------------------------
# What was given, and the observation after it
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DoseEventIn:
    """One recorded dose event (``treatment.DoseEvent``): start, rate, pause, resume, stop,
    device or given."""

    kind: str
    at: datetime
    rate_mg_per_min: Decimal | None = None


@dataclass(frozen=True)
class Given:
    drawn_mg: Decimal
    given_mg: Decimal
    unused_mg: Decimal
    arithmetic: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "drawn_mg": _json_number(self.drawn_mg),
            "given_mg": _json_number(self.given_mg),
            "unused_mg": _json_number(self.unused_mg),
            "arithmetic": list(self.arithmetic),
        }


GIVEN_MG_STEP = Decimal("0.01")


def administered_mg(
    route: str, drawn_mg: Any, events: Sequence[DoseEventIn], end: datetime | None = None
) -> Given:
    """The amount actually given, from what happened, and the unused rest of what was drawn.

    IV: the rate (mg/min) integrated from the start over every rate change and pause up to the
    stop (or ``end``, e.g. an early stop of the session); esketamine: 28 mg per device given;
    other routes: the drawn dose once it is recorded as given. Never more than was drawn. The
    shortfall of an infusion within the rate's display rounding (half of 0.001 mg/min over the
    minutes run) counts as fully given: it is arithmetic, not drug left in the bag.
    """
    drawn = _positive(drawn_mg, "drawn_mg")
    lines: list[str] = []
    if route == ESKETAMINE:
        devices = sum(1 for e in events if e.kind == "device")
        given = min(drawn, ESKETAMINE_DEVICE_MG * devices)
        lines.append(f"{devices} device(s) × 28 mg = {fmt(ESKETAMINE_DEVICE_MG * devices)} mg")
    elif route in INFUSION_ROUTES:
        total = Decimal(0)
        minutes_run = Decimal(0)
        rate: Decimal | None = None
        since: datetime | None = None
        stop_at = end
        ordered = sorted(events, key=lambda e: e.at)
        for e in ordered:
            if since is not None and rate is not None:
                stop = e.at if stop_at is None else min(e.at, stop_at)
                mins = max(Decimal((stop - since).total_seconds()) / 60, Decimal(0))
                total += rate * mins
                minutes_run += mins
                lines.append(
                    f"{fmt(_quantize(mins, Decimal('0.01')))} min × {fmt(rate)} mg/min = "
                    f"{fmt(_quantize(rate * mins, GIVEN_MG_STEP))} mg"
                )
            if stop_at is not None and e.at >= stop_at:
                since = None
                break
            if e.kind in ("start", "resume", "rate"):
                if e.rate_mg_per_min is not None:
                    rate = Decimal(e.rate_mg_per_min)
                since = e.at
            elif e.kind in ("pause", "stop"):
                since = None
                if e.kind == "stop":
                    break
        if since is not None and rate is not None and stop_at is not None:
            mins = max(Decimal((stop_at - since).total_seconds()) / 60, Decimal(0))
            total += rate * mins
            minutes_run += mins
            lines.append(
                f"{fmt(_quantize(mins, Decimal('0.01')))} min × {fmt(rate)} mg/min = "
                f"{fmt(_quantize(rate * mins, GIVEN_MG_STEP))} mg (until the dose ended)"
            )
        tolerance = RATE_MG_PER_MIN_STEP / 2 * minutes_run
        if total >= drawn - tolerance:
            given = drawn
            if total != drawn:
                lines.append(
                    f"{fmt(_quantize(total, GIVEN_MG_STEP))} mg is within the rate's rounding "
                    f"(± {fmt(_quantize(tolerance, Decimal('0.001')))} mg) of the "
                    f"{fmt(drawn)} mg drawn: all given"
                )
        else:
            given = _quantize(total, GIVEN_MG_STEP)
    else:
        given = drawn if any(e.kind == "given" for e in events) else Decimal(0)
        lines.append(f"Given as one dose: {fmt(given)} mg")
    unused = drawn - given
    lines.append(
        f"Drawn {fmt(drawn)} mg − given {fmt(given)} mg = {fmt(unused)} mg unused (to be wasted)"
    )
    return Given(drawn, given, unused, tuple(lines))


def observation_unmet(
    route: str, dose_ended_at: datetime | None, now: datetime, settings: DosingSettings = DEFAULTS
) -> str | None:
    """The minimum observation after the dose ended, as an unmet discharge criterion, or None."""
    need = settings.observation_minutes(route)
    if need is None:
        return None
    if dose_ended_at is None:
        return f"The dose has not ended: observe at least {fmt(need)} min after it ends."
    elapsed = Decimal(int((now - dose_ended_at).total_seconds())) / 60
    if elapsed < need:
        return (
            f"Minimum observation after the dose: {fmt(elapsed.to_integral_value(ROUND_FLOOR))} "
            f"of at least {fmt(need)} min since the dose ended ({route}; clinic dosing settings)."
        )
    return None


# ---------------------------------------------------------------------------
# CLI: ketaflow dose ...
# ---------------------------------------------------------------------------


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # raise instead of sys.exit so main() returns 2
        raise _UsageError(message)


def _build_parser() -> _Parser:
    p = _Parser(
        prog="ketaflow dose",
        description="Ketamine / esketamine dose calculator. Prints JSON; exit 2 on refusal.",
    )
    p.add_argument("--route", required=True, choices=ROUTES)
    p.add_argument("--weight-kg", help="body weight in kg, on the clinic's weight basis")
    p.add_argument("--mg-per-kg", help="dose in mg/kg (iv/im/sc/oral ketamine)")
    p.add_argument("--minutes", help="infusion time in minutes (iv-ketamine)")
    p.add_argument("--stock-mg-per-ml", help="stock concentration in mg/mL")
    p.add_argument("--bag-ml", help="infusion bag volume in mL (iv-ketamine)")
    p.add_argument(
        "--override-reason",
        help=f"written reason (at least {OVERRIDE_REASON_MIN_CHARS} characters) to exceed the "
        "clinic mg/kg maximum; never passes the absolute ceiling",
    )
    p.add_argument("--dose-mg", help="esketamine dose in mg (28, 56 or 84)")
    p.add_argument("--last-dose-at", help="ISO date-time of the previous dose")
    p.add_argument("--min-interval-hours", help="minimum hours between doses (default: setting)")
    return p


def main(argv: Sequence[str] | None = None, settings: DosingSettings = DEFAULTS) -> int:
    """``ketaflow dose ...`` (argv excludes "dose"). Prints JSON, returns 0; 2 on refusal."""
    parser = _build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except _UsageError as exc:
        print(f"ketaflow dose: error: {exc}", file=sys.stderr)
        print(parser.format_usage().rstrip(), file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0)

    def refuse(limit: str, message: str) -> int:
        print(f"ketaflow dose: refused ({limit}): {message}", file=sys.stderr)
        return 2

    last = None
    if args.last_dose_at is not None:
        try:
            last = datetime.fromisoformat(args.last_dose_at)
        except ValueError:
            return refuse("last_dose_at", f"not an ISO date-time: {args.last_dose_at!r}")
    try:
        if args.route == ESKETAMINE:
            for opt in ("weight_kg", "mg_per_kg", "minutes", "stock_mg_per_ml", "bag_ml"):
                if getattr(args, opt) is not None:
                    return refuse(opt, f"--{opt.replace('_', '-')} does not apply to {ESKETAMINE}")
            if args.override_reason is not None:
                return refuse("esketamine_max", "the esketamine dose limits cannot be overridden")
            if args.dose_mg is None:
                return refuse("dose_mg", f"--dose-mg is required for {ESKETAMINE}")
            result = calculate_esketamine(
                args.dose_mg,
                last_dose_at=last,
                min_interval_hours=args.min_interval_hours,
                settings=settings,
            )
        else:
            if args.dose_mg is not None:
                return refuse("dose_mg", "--dose-mg is for esketamine; use --mg-per-kg")
            for opt in ("weight_kg", "mg_per_kg"):
                if getattr(args, opt) is None:
                    return refuse(opt, f"--{opt.replace('_', '-')} is required for {args.route}")
            result = calculate_weight_based(
                args.route,
                args.weight_kg,
                args.mg_per_kg,
                minutes=args.minutes,
                stock_mg_per_ml=args.stock_mg_per_ml,
                bag_ml=args.bag_ml,
                override_reason=args.override_reason,
                last_dose_at=last,
                min_interval_hours=args.min_interval_hours,
                settings=settings,
            )
    except DoseError as exc:
        return refuse(exc.limit, exc.message)
    print(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
