"""Pharmacokinetic models as data.

Every number here comes from ``/work/shared/clinical-reference.md`` section 7
(ketaflow's clinical reference) unless a field says otherwise.  Nothing is fitted
or tuned in this module.

Internal units: time in minutes, amounts in mg, volumes in L.  Concentrations are
reported in ng/mL (= mg/L x 1000).

A model is turned into a linear time-invariant system ``dx/dt = K x + u(t)``
(amounts form) by :func:`build_system`.  ``K`` may be built for a single subject
(shape ``(n, n)``) or, for the population simulator, for many subjects at once
(shape ``(N, n, n)``): all parameter arithmetic below broadcasts over NumPy arrays.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

import numpy as np

NG_PER_ML_PER_MG_PER_L = 1000.0
REFERENCE = "ketaflow clinical reference, section 7 (Pharmacokinetics)"


@dataclass(frozen=True)
class Parameter:
    """One published parameter value with its unit."""

    value: float
    unit: str
    note: str = ""


@dataclass(frozen=True)
class Variability:
    """Inter-individual variability of one parameter.

    ``kind`` is ``"log-normal"`` (``P_i = P * exp(eta)``, ``eta ~ N(0, omega^2)``,
    ``omega^2 = ln(1 + CV^2)``) or ``"logit-normal"`` (``logit(P_i) = logit(P) + eta``,
    ``eta ~ N(0, sd^2)``).  ``value`` is the CV (fraction) for log-normal and the
    SD on the logit scale for logit-normal.  ``None`` means the source gives no value:
    the parameter is then held at its typical value (no variability is invented).
    """

    kind: str
    value: float | None
    source: str

    @property
    def omega(self) -> float | None:
        """Standard deviation of eta."""
        if self.value is None:
            return None
        if self.kind == "log-normal":
            return float(np.sqrt(np.log1p(self.value**2)))
        if self.kind == "logit-normal":
            return float(self.value)
        raise ValueError(f"unknown variability kind {self.kind!r}")


@dataclass(frozen=True)
class PKModel:
    """A published linear compartment model (data only)."""

    code: str
    title: str
    drug: str
    analyte: str
    route: str
    structure: str
    citation: str
    population: str
    units: str
    weight_scaling: str
    limits: tuple[str, ...]
    parameters: Mapping[str, Parameter]
    scalings: tuple[str, ...] = ("linear",)
    metabolite: str | None = None
    variability: Mapping[str, Variability] | None = None
    variability_note: str = ""
    accepts: tuple[str, ...] = ("iv",)

    @property
    def source(self) -> str:
        """The published source alone (the citation without where ketaflow took the
        numbers from), for pages a patient reads."""
        return self.citation.split("; param")[0]

    @property
    def default_scaling(self) -> str:
        return self.scalings[0]

    def value(self, name: str) -> float:
        return self.parameters[name].value

    @cached_property
    def typical(self) -> Mapping[str, float]:
        """Every parameter's published (typical) value, by name."""
        return MappingProxyType({k: v.value for k, v in self.parameters.items()})

    def describe(self) -> dict:
        """JSON-friendly description (citation, population, route, units, limits)."""
        return {
            "code": self.code,
            "title": self.title,
            "drug": self.drug,
            "analyte": self.analyte,
            "metabolite": self.metabolite,
            "route": self.route,
            "structure": self.structure,
            "citation": self.citation,
            "population": self.population,
            "units": self.units,
            "weight_scaling": self.weight_scaling,
            "scalings": list(self.scalings),
            "limits": list(self.limits),
            "parameters": {
                k: {"value": p.value, "unit": p.unit, **({"note": p.note} if p.note else {})}
                for k, p in self.parameters.items()
            },
            "variability": (
                None
                if self.variability is None
                else {
                    k: {"kind": v.kind, "value": v.value, "source": v.source}
                    for k, v in self.variability.items()
                }
            ),
            "variability_note": self.variability_note,
        }


def _params(**kw: tuple[float, str] | tuple[float, str, str]) -> Mapping[str, Parameter]:
    return MappingProxyType({k: Parameter(*v) for k, v in kw.items()})


_MAMMILLARY_LIMITS = (
    "Arterial/central-compartment model: during an infusion it reads higher than the "
    "venous samples taken in depression trials.",
    "Fitted at anaesthetic or analgesic doses in other populations; not fitted to "
    "0.5 mg/kg depression infusions.",
    "Racemic ketamine only; no norketamine output.",
    "Population estimate for a typical subject: no inter-individual variability is "
    "given in ketaflow's reference, so population bands reflect weight only.",
)

DOMINO = PKModel(
    code="domino",
    title="Domino racemic ketamine, 3 compartments",
    drug="racemic ketamine",
    analyte="ketamine",
    route="IV",
    structure="3-compartment mammillary, elimination from central",
    citation=(
        "Domino EF et al., Anesth Analg 1982 (PMID 7198883); parameter set as given in "
        f"{REFERENCE} (also shipped by opentiva and stanpumpR)."
    ),
    population="Adult surgical patients (anaesthetic doses).",
    units="V1 in L/kg; rate constants per minute",
    weight_scaling="linear in weight: V1 = 0.063 L/kg x W; rate constants weight-independent",
    limits=_MAMMILLARY_LIMITS,
    parameters=_params(
        v1_per_kg=(0.063, "L/kg"),
        k10=(0.438, "1/min"),
        k12=(0.592, "1/min"),
        k21=(0.247, "1/min"),
        k13=(0.590, "1/min"),
        k31=(0.0146, "1/min"),
    ),
)

CLEMENTS_250 = PKModel(
    code="clements-250",
    title="Clements racemic ketamine (250 µg/kg data), 2 compartments",
    drug="racemic ketamine",
    analyte="ketamine",
    route="IV",
    structure="2-compartment mammillary, elimination from central",
    citation=(
        "Clements JA, Nimmo WS, Br J Anaesth 1981;53:27 (doi:10.1093/bja/53.1.27); "
        f"parameter set as given in {REFERENCE}."
    ),
    population="Adult volunteers; parameter set from the 250 µg/kg IV dose.",
    units="V1 in L/kg; rate constants per minute",
    weight_scaling="linear in weight: V1 = 1.7522 L/kg x W; rate constants weight-independent",
    limits=_MAMMILLARY_LIMITS,
    parameters=_params(
        v1_per_kg=(1.7522, "L/kg"),
        k10=(0.0109, "1/min"),
        k12=(0.0186, "1/min"),
        k21=(0.0137, "1/min"),
    ),
)

HIJAZI_2003 = PKModel(
    code="hijazi-2003",
    title="Hijazi racemic ketamine, 2 compartments",
    drug="racemic ketamine",
    analyte="ketamine",
    route="IV",
    structure="2-compartment mammillary, elimination from central",
    citation=(
        "Hijazi Y et al., Br J Anaesth 2003;90:155 (doi:10.1093/bja/aeg028); "
        f"parameter set as given in {REFERENCE}."
    ),
    population="Intensive-care patients with brain or spinal cord injury (long infusions).",
    units="V1 in L/kg; rate constants per minute",
    weight_scaling="linear in weight: V1 = 1.08 L/kg x W; rate constants weight-independent",
    limits=_MAMMILLARY_LIMITS,
    parameters=_params(
        v1_per_kg=(1.08, "L/kg"),
        k10=(0.0333, "1/min"),
        k12=(0.0088, "1/min"),
        k21=(0.0030, "1/min"),
    ),
)

KAMP_2020 = PKModel(
    code="kamp-2020",
    title="Kamp racemic ketamine, 3 compartments",
    drug="racemic ketamine",
    analyte="ketamine",
    route="IV",
    structure="3-compartment mammillary, elimination from central",
    citation=(
        "Kamp J et al., Anesthesiology 2020 (doi:10.1097/ALN.0000000000003577, PMID 32997732); "
        f"parameter set as given in {REFERENCE}."
    ),
    population="Pooled literature data (adults); values given per 70 kg.",
    units="volumes in L and clearances in L/h per 70 kg (converted to per minute internally)",
    weight_scaling=(
        "allometric (default): volumes x W/70, clearances x (W/70)^0.75; "
        "'linear' option: volumes and clearances x W/70 (the scaling used by opentiva's Klamp)"
    ),
    limits=_MAMMILLARY_LIMITS,
    parameters=_params(
        v1=(25.0, "L per 70 kg"),
        v2=(56.0, "L per 70 kg"),
        v3=(157.0, "L per 70 kg"),
        cl=(84.0, "L/h per 70 kg"),
        q2=(161.0, "L/h per 70 kg"),
        q3=(79.0, "L/h per 70 kg"),
    ),
    scalings=("allometric", "linear"),
)

# Inter-individual variability for Perez-Ruixo 2021.  ketaflow's reference does not
# give these values.  They are the omega estimates of the paper's Table 3 as
# transcribed, with a per-row "Table 3" source trace, in nlmixr2lib
# (inst/modeldb/specificDrugs/PerezRuixo_2020_esketamine.R, commit 00785fd).  The
# paper's Table 3 leaves the kmet estimate blank, so kmet carries no variability here
# (nlmixr2lib fills in 30% for want of a value; ketaflow does not invent one).
_PR_IIV_SOURCE = (
    "Perez-Ruixo et al. 2021, Table 3 (omega column), as transcribed in nlmixr2lib "
    "PerezRuixo_2020_esketamine.R; to be checked against the paper by the medical director"
)
PEREZ_RUIXO_IIV = MappingProxyType(
    {
        "frn": Variability("logit-normal", 0.708, _PR_IIV_SOURCE + " (70.8, additive on logit)"),
        "ka_n": Variability("log-normal", 0.615, _PR_IIV_SOURCE),
        "ka_sw": Variability("log-normal", 1.32, _PR_IIV_SOURCE),
        "vc": Variability("log-normal", 0.275, _PR_IIV_SOURCE),
        "vp1": Variability("log-normal", 0.493, _PR_IIV_SOURCE),
        "qh": Variability("log-normal", 0.232, _PR_IIV_SOURCE),
        "vh": Variability("log-normal", 0.346, _PR_IIV_SOURCE),
        "kel": Variability("log-normal", 1.20, _PR_IIV_SOURCE),
        "kmet": Variability("log-normal", None, "Perez-Ruixo et al. 2021 Table 3: estimate blank"),
        "vcn": Variability("log-normal", 0.316, _PR_IIV_SOURCE),
        "cln": Variability("log-normal", 0.254, _PR_IIV_SOURCE),
    }
)

PEREZ_RUIXO_2021 = PKModel(
    code="perez-ruixo-2021",
    title="Perez-Ruixo esketamine nasal spray with noresketamine",
    drug="esketamine",
    analyte="esketamine",
    route="intranasal (IV input supported for bioavailability reference)",
    structure=(
        "nasal depot -> central; swallowed part: zero-order into gut depot over Dsw, "
        "first-order to liver; central (Vc) with two peripherals and a liver compartment "
        "(Vh, exchange at Qh); elimination (kel) and conversion to noresketamine (kmet) "
        "from the liver; noresketamine 2 compartments (apparent volumes)"
    ),
    citation=(
        "Perez-Ruixo C et al., Population Pharmacokinetics of Esketamine Nasal Spray and its "
        "Metabolite Noresketamine in Healthy Subjects and Patients with Treatment-Resistant "
        "Depression. Clin Pharmacokinet 2021;60(4):501-516 (doi:10.1007/s40262-020-00953-4); "
        f"parameters as given in {REFERENCE}."
    ),
    population=(
        "820 healthy subjects and patients with treatment-resistant depression; typical "
        "non-Asian adult 18-60 y (age above 60 lowers Qh by 2.19 L/h per year)."
    ),
    units="volumes in L, flows in L/h, rate constants per hour (converted to per minute)",
    weight_scaling="none: body weight is not a covariate of this model",
    limits=(
        "Typical non-Asian adult; the race covariates of the paper are not in ketaflow's "
        "reference and are not applied.",
        "Noresketamine volumes and clearance are apparent (divided by an unknown fraction "
        "metabolised); treat noresketamine levels as indicative.  With the published "
        "parameters the noresketamine AUC0-24 is 41-46% above the paper's Table 4 at 28-84 mg "
        "while its Cmax, and esketamine's Cmax and AUC, match Table 4 within 1% (an "
        "independent implementation, nlmixr2lib, finds the same); ketaflow does not rescale "
        "the model to hide this.",
        "Devices: the second and later devices of a session are 0.62 times as effective "
        "(nasal fraction); a new session restarts the count.",
        "Age adjustment applies above 60 years only.",
    ),
    parameters=_params(
        frn=(0.54, "fraction", "nasal fraction of a single 28 mg device"),
        frn_later_device=(0.62, "factor", "relative nasal fraction of devices 2..N"),
        ka_n=(2.93, "1/h"),
        fgut=(0.64, "fraction"),
        dsw=(0.53, "h"),
        ka_sw=(1.45, "1/h"),
        vc=(192.0, "L"),
        q1=(84.3, "L/h"),
        vp1=(143.0, "L"),
        q2=(37.6, "L/h"),
        vp2=(417.0, "L"),
        vh=(101.0, "L"),
        qh=(151.0, "L/h"),
        qh_age_slope=(2.19, "L/h per year above 60"),
        kel=(1.11, "1/h"),
        kmet=(2.77, "1/h"),
        vcn=(70.0, "L (apparent)"),
        cln=(38.0, "L/h (apparent)"),
        q3=(26.1, "L/h (apparent)"),
        vpn=(115.0, "L (apparent)"),
    ),
    scalings=("none",),
    metabolite="noresketamine",
    variability=PEREZ_RUIXO_IIV,
    variability_note=(
        "ketaflow's reference gives no inter-individual variability for this model.  The "
        "shipped values are the paper's Table 3 omegas as transcribed by nlmixr2lib (see "
        "each entry's source); kmet has no published value and is held fixed.  Set "
        "iiv=False to get bands from age covariates only."
    ),
    accepts=("nasal", "iv"),
)

MODELS: Mapping[str, PKModel] = MappingProxyType(
    {m.code: m for m in (DOMINO, CLEMENTS_250, HIJAZI_2003, KAMP_2020, PEREZ_RUIXO_2021)}
)
RACEMIC_MODELS = ("domino", "clements-250", "hijazi-2003", "kamp-2020")


def get_model(code: str) -> PKModel:
    try:
        return MODELS[code]
    except KeyError:
        known = ", ".join(MODELS)
        raise ValueError(f"unknown model {code!r}; known models: {known}") from None


@dataclass(frozen=True)
class LinearSystem:
    """``dx/dt = K x + u``; amounts in mg, time in minutes.

    ``K`` has shape ``(..., n, n)``.  ``outputs`` maps an analyte name to a row
    vector (shape ``(..., n)``) turning amounts into ng/mL.  ``inputs`` maps a route
    name to the compartment index receiving it.  ``clearance_l_per_min`` is the
    plasma clearance of the parent drug (for mass-balance checks).
    """

    K: np.ndarray
    compartments: tuple[str, ...]
    outputs: Mapping[str, np.ndarray]
    inputs: Mapping[str, int]
    clearance_l_per_min: np.ndarray | float
    extra: Mapping[str, object] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.compartments)


def _flow(K: np.ndarray, src: int, dst: int, k) -> None:
    """Add a first-order transfer ``src -> dst`` (dst < 0: elimination)."""
    K[..., src, src] -= k
    if dst >= 0:
        K[..., dst, src] += k


def _mammillary(v1, k10, k12, k21, k13=None, k31=None) -> LinearSystem:
    v1, k10, k12, k21 = (np.asarray(a, dtype=float) for a in (v1, k10, k12, k21))
    three = k13 is not None
    n = 3 if three else 2
    shape = np.broadcast_shapes(v1.shape, k10.shape, k12.shape, k21.shape)
    K = np.zeros((*shape, n, n))
    _flow(K, 0, -1, k10)
    _flow(K, 0, 1, k12)
    _flow(K, 1, 0, k21)
    names = ("central", "peripheral")
    if three:
        _flow(K, 0, 2, k13)
        _flow(K, 2, 0, k31)
        names = ("central", "peripheral-fast", "peripheral-slow")
    c = np.zeros((*shape, n))
    c[..., 0] = NG_PER_ML_PER_MG_PER_L / np.broadcast_to(v1, shape)
    return LinearSystem(
        K=K,
        compartments=names,
        outputs={"ketamine": c},
        inputs={"iv": 0},
        clearance_l_per_min=np.broadcast_to(v1 * k10, shape),
    )


# Esketamine compartment indices.
NASAL, GUT, CENTRAL, PERIPH1, PERIPH2, LIVER, NOR_CENTRAL, NOR_PERIPH = range(8)
_PR_NAMES = (
    "nasal-depot",
    "gut-depot",
    "central",
    "peripheral-1",
    "peripheral-2",
    "liver",
    "noresketamine-central",
    "noresketamine-peripheral",
)


def perez_ruixo_qh(age_years, qh: float | np.ndarray | None = None) -> np.ndarray:
    """Hepatic blood flow in L/h: falls by 2.19 L/h per year above 60."""
    m = PEREZ_RUIXO_2021
    base = m.value("qh") if qh is None else qh
    age = np.asarray(0.0 if age_years is None else age_years, dtype=float)
    return base - m.value("qh_age_slope") * np.maximum(age - 60.0, 0.0)


def _perez_ruixo(age_years, overrides: Mapping[str, np.ndarray] | None = None) -> LinearSystem:
    m = PEREZ_RUIXO_2021
    p = {k: np.asarray(v.value, dtype=float) for k, v in m.parameters.items()}
    if overrides:
        p.update({k: np.asarray(v, dtype=float) for k, v in overrides.items()})
    qh = perez_ruixo_qh(age_years, p["qh"])
    if np.any(qh <= 0):
        raise ValueError("age too high for the Qh age adjustment (Qh would be <= 0)")
    per_h = 1.0 / 60.0  # /h -> /min
    shape = np.broadcast_shapes(*(a.shape for a in p.values()), qh.shape)
    K = np.zeros((*shape, 8, 8))
    _flow(K, NASAL, CENTRAL, p["ka_n"] * per_h)
    _flow(K, GUT, LIVER, p["ka_sw"] * per_h)
    _flow(K, CENTRAL, PERIPH1, p["q1"] / p["vc"] * per_h)
    _flow(K, PERIPH1, CENTRAL, p["q1"] / p["vp1"] * per_h)
    _flow(K, CENTRAL, PERIPH2, p["q2"] / p["vc"] * per_h)
    _flow(K, PERIPH2, CENTRAL, p["q2"] / p["vp2"] * per_h)
    _flow(K, CENTRAL, LIVER, qh / p["vc"] * per_h)
    _flow(K, LIVER, CENTRAL, qh / p["vh"] * per_h)
    _flow(K, LIVER, -1, p["kel"] * per_h)
    _flow(K, LIVER, NOR_CENTRAL, p["kmet"] * per_h)
    _flow(K, NOR_CENTRAL, -1, p["cln"] / p["vcn"] * per_h)
    _flow(K, NOR_CENTRAL, NOR_PERIPH, p["q3"] / p["vcn"] * per_h)
    _flow(K, NOR_PERIPH, NOR_CENTRAL, p["q3"] / p["vpn"] * per_h)
    c_parent = np.zeros((*shape, 8))
    c_parent[..., CENTRAL] = NG_PER_ML_PER_MG_PER_L / np.broadcast_to(p["vc"], shape)
    c_met = np.zeros((*shape, 8))
    c_met[..., NOR_CENTRAL] = NG_PER_ML_PER_MG_PER_L / np.broadcast_to(p["vcn"], shape)
    # Well-stirred liver: plasma clearance = Qh * E, E = CLint / (Qh + CLint).
    clint = p["vh"] * (p["kel"] + p["kmet"])
    cl = qh * clint / (qh + clint) * per_h
    return LinearSystem(
        K=K,
        compartments=_PR_NAMES,
        outputs={"esketamine": c_parent, "noresketamine": c_met},
        inputs={"iv": CENTRAL, "nasal": NASAL, "gut": GUT},
        clearance_l_per_min=np.broadcast_to(cl, shape),
        extra={
            "frn": p["frn"],
            "frn_later_device": p["frn_later_device"],
            "fgut": p["fgut"],
            "dsw_min": p["dsw"] * 60.0,
        },
    )


def build_system(
    model: PKModel | str,
    weight_kg=70.0,
    age_years=None,
    scaling: str | None = None,
    overrides: Mapping[str, np.ndarray] | None = None,
) -> LinearSystem:
    """Instantiate ``model`` for a subject (or, with array inputs, many subjects).

    ``overrides`` replaces typical parameter values (used for inter-individual
    variability); keys are the model's parameter names.
    """
    if isinstance(model, str):
        model = get_model(model)
    scaling = check_scaling(model, scaling)
    w = np.asarray(weight_kg, dtype=float)
    if np.any(~np.isfinite(w)) or np.any(w <= 0):
        raise ValueError("weight must be a positive number of kg")
    if model.code == "perez-ruixo-2021":
        return _perez_ruixo(age_years, overrides)
    p = {k: np.asarray(v.value, dtype=float) for k, v in model.parameters.items()}
    if overrides:
        p.update({k: np.asarray(v, dtype=float) for k, v in overrides.items()})
    return _mammillary(*mammillary_rates(model, w, scaling, p))


def check_scaling(model: PKModel, scaling: str | None) -> str:
    """The weight scaling to use (the model's default if ``None``); unknown ones raise."""
    scaling = model.default_scaling if scaling is None else scaling
    if scaling not in model.scalings:
        raise ValueError(
            f"model {model.code} supports weight scaling {', '.join(model.scalings)}, "
            f"not {scaling!r}"
        )
    return scaling


def is_mammillary(model: PKModel) -> bool:
    """True for the racemic IV models (central input and output, elimination from central)."""
    return model.code != "perez-ruixo-2021"


def mammillary_rates(model: PKModel, w, scaling: str, p: Mapping | None = None) -> tuple:
    """``(V1 in L, k10, k12, k21, k13, k31)`` per minute for a mammillary model
    (``k13``/``k31`` are ``None`` for two compartments).

    ``w`` and the values of ``p`` (default: the published parameters) may be floats
    or NumPy arrays; :func:`build_system` and the single-subject fast path in
    :mod:`.fast` share this arithmetic, so both see bit-identical constants.
    """
    if p is None:
        p = model.typical
    if model.code == "kamp-2020":
        vol = w / 70.0
        clf = (w / 70.0) ** 0.75 if scaling == "allometric" else w / 70.0
        v1, v2, v3 = p["v1"] * vol, p["v2"] * vol, p["v3"] * vol
        cl, q2, q3 = (p[k] * clf / 60.0 for k in ("cl", "q2", "q3"))
        return v1, cl / v1, q2 / v1, q2 / v2, q3 / v1, q3 / v3
    v1 = p["v1_per_kg"] * w
    if "k13" in p:
        return v1, p["k10"], p["k12"], p["k21"], p["k13"], p["k31"]
    return v1, p["k10"], p["k12"], p["k21"], None, None
