"""Dosing regimens: boluses, constant-rate infusions (rate changes, pauses), nasal devices.

Times are minutes from the start of the simulation (normally the first dose).
Regimens are immutable: every builder method returns a new :class:`Regimen`.

Pump semantics (stated because pumps differ):

* :meth:`Regimen.change_rate` changes the rate from a time on; the infusion keeps its
  scheduled stop time, so the delivered dose changes.
* :meth:`Regimen.pause` stops the pump for a while and resumes it: everything the
  pump still had to deliver is shifted later by the pause, so the dose is unchanged.
* :meth:`Regimen.stop` stops all infusions at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

DEVICE_MG = 28.0  # one esketamine nasal device = 28 mg (2 sprays), clinical reference s.1


def _check_time(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number of minutes >= 0, got {value}")
    return value


def _check_amount(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite amount >= 0, got {value}")
    return value


@dataclass(frozen=True)
class Bolus:
    """IV bolus of ``amount`` mg (or mg/kg when ``per_kg``) at ``time_min``."""

    time_min: float
    amount: float
    per_kg: bool = False


@dataclass(frozen=True)
class Infusion:
    """Constant-rate IV infusion ``rate`` mg/min (mg/kg/min when ``per_kg``)."""

    start_min: float
    end_min: float
    rate: float
    per_kg: bool = False

    @property
    def duration_min(self) -> float:
        return self.end_min - self.start_min


@dataclass(frozen=True)
class NasalSession:
    """``devices`` esketamine devices (28 mg each), ``interval_min`` apart."""

    time_min: float
    devices: int
    interval_min: float = 5.0

    @property
    def device_times(self) -> tuple[float, ...]:
        return tuple(self.time_min + k * self.interval_min for k in range(self.devices))

    @property
    def mg(self) -> float:
        return self.devices * DEVICE_MG


@dataclass(frozen=True)
class Regimen:
    boluses: tuple[Bolus, ...] = ()
    infusions: tuple[Infusion, ...] = ()
    nasal: tuple[NasalSession, ...] = ()

    # ----------------------------------------------------------------- builders
    @classmethod
    def infusion(
        cls,
        *,
        minutes: float,
        mg: float | None = None,
        mg_per_kg: float | None = None,
        start_min: float = 0.0,
    ) -> Regimen:
        """One constant-rate infusion of a total dose (mg or mg/kg) over ``minutes``."""
        return cls().add_infusion(minutes=minutes, mg=mg, mg_per_kg=mg_per_kg, start_min=start_min)

    @classmethod
    def bolus(cls, *, mg: float | None = None, mg_per_kg: float | None = None, at_min=0.0):
        return cls().add_bolus(mg=mg, mg_per_kg=mg_per_kg, at_min=at_min)

    @classmethod
    def nasal_session(cls, mg: float, at_min: float = 0.0, interval_min: float = 5.0):
        return cls().add_nasal(mg, at_min=at_min, interval_min=interval_min)

    def add_infusion(
        self,
        *,
        minutes: float,
        mg: float | None = None,
        mg_per_kg: float | None = None,
        start_min: float = 0.0,
        mg_per_min: float | None = None,
    ) -> Regimen:
        """Add an infusion given by total dose (``mg`` / ``mg_per_kg``) or by rate."""
        start = _check_time("start_min", start_min)
        minutes = float(minutes)
        if not math.isfinite(minutes) or minutes <= 0:
            raise ValueError("infusion duration must be > 0 minutes (use a bolus otherwise)")
        given = [x is not None for x in (mg, mg_per_kg, mg_per_min)]
        if sum(given) != 1:
            raise ValueError("give exactly one of mg, mg_per_kg or mg_per_min")
        if mg is not None:
            rate, per_kg = _check_amount("mg", mg) / minutes, False
        elif mg_per_kg is not None:
            rate, per_kg = _check_amount("mg_per_kg", mg_per_kg) / minutes, True
        else:
            rate, per_kg = _check_amount("mg_per_min", mg_per_min), False
        inf = Infusion(start, start + minutes, rate, per_kg)
        return Regimen(self.boluses, (*self.infusions, inf), self.nasal)

    def add_bolus(
        self, *, mg: float | None = None, mg_per_kg: float | None = None, at_min: float = 0.0
    ) -> Regimen:
        if (mg is None) == (mg_per_kg is None):
            raise ValueError("give exactly one of mg or mg_per_kg")
        amount = _check_amount("bolus", mg if mg is not None else mg_per_kg)
        b = Bolus(_check_time("at_min", at_min), amount, mg is None)
        return Regimen((*self.boluses, b), self.infusions, self.nasal)

    def add_nasal(self, mg: float, at_min: float = 0.0, interval_min: float = 5.0) -> Regimen:
        """A nasal session of ``mg`` (a multiple of 28 mg), devices ``interval_min`` apart."""
        mg = float(mg)
        devices = round(mg / DEVICE_MG)
        if mg <= 0 or abs(devices * DEVICE_MG - mg) > 1e-9:
            raise ValueError(f"nasal dose must be a positive multiple of 28 mg, got {mg:g} mg")
        interval = float(interval_min)
        if not math.isfinite(interval) or interval < 0:
            raise ValueError("device interval must be >= 0 minutes")
        s = NasalSession(_check_time("at_min", at_min), devices, interval)
        return Regimen(self.boluses, self.infusions, (*self.nasal, s))

    def change_rate(self, at_min: float, mg_per_min: float) -> Regimen:
        """From ``at_min`` on, every running infusion runs at ``mg_per_min`` until its stop."""
        t = _check_time("at_min", at_min)
        rate = _check_amount("mg_per_min", mg_per_min)
        out: list[Infusion] = []
        hit = False
        for inf in self.infusions:
            if inf.start_min < t < inf.end_min:
                hit = True
                out.append(replace(inf, end_min=t))
                new_rate = rate
                if inf.per_kg:
                    raise ValueError("change_rate needs an infusion given in mg, not mg/kg")
                out.append(Infusion(t, inf.end_min, new_rate, False))
            else:
                out.append(inf)
        if not hit:
            raise ValueError(f"no infusion is running at {t:g} min")
        return replace(self, infusions=tuple(out))

    def pause(self, at_min: float, minutes: float) -> Regimen:
        """Pause the pump at ``at_min`` for ``minutes``; the rest is delivered later."""
        t = _check_time("at_min", at_min)
        d = float(minutes)
        if not math.isfinite(d) or d <= 0:
            raise ValueError("pause length must be > 0 minutes")
        out: list[Infusion] = []
        hit = False
        for inf in self.infusions:
            if inf.end_min <= t:
                out.append(inf)
            elif inf.start_min >= t:
                out.append(replace(inf, start_min=inf.start_min + d, end_min=inf.end_min + d))
            else:
                hit = True
                out.append(replace(inf, end_min=t))
                out.append(replace(inf, start_min=t + d, end_min=inf.end_min + d))
        if not hit:
            raise ValueError(f"no infusion is running at {t:g} min")
        return replace(self, infusions=tuple(out))

    def stop(self, at_min: float) -> Regimen:
        """Stop every infusion at ``at_min`` (infusions not yet started are dropped)."""
        t = _check_time("at_min", at_min)
        out = tuple(
            replace(inf, end_min=min(inf.end_min, t)) for inf in self.infusions if inf.start_min < t
        )
        return replace(self, infusions=out)

    def __add__(self, other: Regimen) -> Regimen:
        return Regimen(
            self.boluses + other.boluses,
            self.infusions + other.infusions,
            self.nasal + other.nasal,
        )

    # ------------------------------------------------------------ inspection
    def scaled(self, factor: float) -> Regimen:
        """Every IV amount and rate multiplied by ``factor`` (nasal sessions unchanged)."""
        return Regimen(
            tuple(replace(b, amount=b.amount * factor) for b in self.boluses),
            tuple(replace(i, rate=i.rate * factor) for i in self.infusions),
            self.nasal,
        )

    def shifted(self, minutes: float) -> Regimen:
        return Regimen(
            tuple(replace(b, time_min=b.time_min + minutes) for b in self.boluses),
            tuple(
                replace(i, start_min=i.start_min + minutes, end_min=i.end_min + minutes)
                for i in self.infusions
            ),
            tuple(replace(s, time_min=s.time_min + minutes) for s in self.nasal),
        )

    @property
    def is_empty(self) -> bool:
        return not (self.boluses or self.infusions or self.nasal)

    @property
    def first_dose_min(self) -> float:
        times = [b.time_min for b in self.boluses]
        times += [i.start_min for i in self.infusions]
        times += [s.time_min for s in self.nasal]
        return min(times) if times else 0.0

    @property
    def last_nasal_device_min(self) -> float | None:
        times = [t for s in self.nasal for t in s.device_times]
        return max(times) if times else None

    def iv_dose_mg(self, weight_kg: float) -> float:
        w = float(weight_kg)
        total = sum(b.amount * (w if b.per_kg else 1.0) for b in self.boluses)
        total += sum(i.rate * i.duration_min * (w if i.per_kg else 1.0) for i in self.infusions)
        return total

    @property
    def nasal_dose_mg(self) -> float:
        return sum(s.mg for s in self.nasal)

    def describe(self) -> dict:
        return {
            "boluses": [
                {"at_min": b.time_min, ("mg_per_kg" if b.per_kg else "mg"): b.amount}
                for b in self.boluses
            ],
            "infusions": [
                {
                    "start_min": i.start_min,
                    "end_min": i.end_min,
                    ("mg_per_kg_per_min" if i.per_kg else "mg_per_min"): i.rate,
                }
                for i in self.infusions
            ],
            "nasal_sessions": [
                {
                    "at_min": s.time_min,
                    "mg": s.mg,
                    "devices": s.devices,
                    "interval_min": s.interval_min,
                }
                for s in self.nasal
            ],
        }
