"""Plain-language patient education, one page per route, written for ketaflow.

Every fact names its published source (``source``). The concentration curves are population
estimates from published models, never measurements.  Nothing here links a blood level to
how a person feels: none of the cited sources gives such a relation, so none is claimed.
"""

from dataclasses import dataclass
from functools import lru_cache

from ketaflow.clinical.pk import Regimen, forecast

COMMON_EFFECTS = (
    "feeling detached or dreamlike (dissociation)",
    "dizziness or a spinning feeling (vertigo)",
    "nausea, and sometimes vomiting",
    "sleepiness",
    "numbness",
    "anxiety",
    "headache",
    "blurred vision",
    "feeling drunk",
    "a lifted mood (euphoria)",
    "a rise in blood pressure and heart rate",
)


@dataclass(frozen=True)
class Section:
    heading: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class Topic:
    route: str
    title: str
    summary: str
    sections: tuple[Section, ...]
    effects_last: str
    source: str
    curve: tuple | None = None  # (regimen factory, weight kg, explanation)


def _iv_regimen():
    return Regimen.infusion(mg_per_kg=0.5, minutes=40)


def _esketamine_regimen():
    return Regimen.nasal_session(56, at_min=0, interval_min=5)


TOPICS = {
    "iv-ketamine": Topic(
        route="iv-ketamine",
        title="Ketamine infusion (IV)",
        summary=(
            "Ketamine runs slowly into a vein through a drip while you rest in a chair. The dose "
            "used in most studies is 0.5 mg for each kilogram you weigh, given over 40 minutes."
        ),
        sections=(
            Section(
                "A course of treatment",
                (
                    "Many clinics give six infusions over two to three weeks. After that, some people "
                    "have a booster every few weeks; your prescriber plans this with you.",
                ),
            ),
            Section(
                "On the day",
                (
                    "A nurse checks your blood pressure, heart rate and oxygen level before the drip "
                    "starts, every 10 to 15 minutes while it runs, and until you are ready to go home.",
                    "Blood pressure often rises a little during the infusion. It is usually back to "
                    "your normal within about an hour and a half.",
                ),
            ),
        ),
        effects_last=(
            "The dreamlike, detached feeling usually fades within about 20 minutes of the drip "
            "stopping. Other effects settle over the following hours."
        ),
        source=(
            "Fava et al., Mol Psychiatry 2020 (dose); Murrough et al., Biol Psychiatry 2013 "
            "(course); clinic practice (booster timing, monitoring); measured levels: Krystal et "
            "al. 1994 as quoted by Zanos et al., Pharmacol Rev 2018"
        ),
        curve=(
            _iv_regimen,
            70.0,
            "Each line is the estimate of one of four published computer models of how ketamine "
            "moves through the body, for a typical 70 kg adult having 0.5 mg per kilogram over 40 "
            "minutes. The models do not agree exactly, which is why there are four lines. The "
            "shaded band (100-250 ng/mL) is the range of ketamine levels measured in blood taken "
            "from a vein during such infusions in a research study (Krystal et al. 1994, as "
            "quoted by Zanos et al. 2018). The curve does not tell you how you will feel.",
        ),
    ),
    "im-ketamine": Topic(
        route="im-ketamine",
        title="Ketamine injection (IM)",
        summary=(
            "Ketamine is injected into a muscle, usually of the upper arm. Studies used 0.25 to 0.5 mg "
            "for each kilogram you weigh; clinics usually start near 0.5 mg per kilogram."
        ),
        sections=(
            Section(
                "On the day",
                (
                    "A nurse checks your blood pressure, heart rate and oxygen level before the injection "
                    "and regularly afterwards, until you are ready to go home.",
                ),
            ),
        ),
        effects_last=(
            "Effects start within minutes and settle over the following hours. The nurse checks that "
            "you are steady and alert before you leave."
        ),
        source="Chilukuri et al., Indian J Psychol Med 2014 (dose); clinic practice (monitoring)",
    ),
    "esketamine-nasal": Topic(
        route="esketamine-nasal",
        title="Esketamine nasal spray (Spravato)",
        summary=(
            "You give yourself the spray in the clinic, one spray in each nostril from each device, "
            "with 5 minutes between devices. A dose of 56 mg is two devices; 84 mg is three."
        ),
        sections=(
            Section(
                "Before you come",
                ("Do not eat for 2 hours and do not drink for 30 minutes before your dose.",),
            ),
            Section(
                "A course of treatment",
                (
                    "Usually twice a week for the first four weeks, then once a week for four weeks, "
                    "then once a week or every two weeks, whichever keeps you well.",
                ),
            ),
            Section(
                "On the day",
                (
                    "You stay in the clinic for at least 2 hours after the dose, with your oxygen level "
                    "watched. Your blood pressure is checked before the dose, about 40 minutes after it, "
                    "and until it is steady.",
                    "Blood pressure rises most around 40 minutes after the dose and can stay a little "
                    "higher for about 4 hours.",
                ),
            ),
        ),
        effects_last="Most effects settle within about an hour and a half of the dose.",
        source="Spravato prescribing information and REMS; curve: Perez-Ruixo et al., Clin Pharmacokinet 2021",
        curve=(
            _esketamine_regimen,
            70.0,
            "The curve is the estimate of a published computer model (Perez-Ruixo et al. 2021) of "
            "how the esketamine level in the blood rises after the two devices of a 56 mg dose and "
            "then falls. It does not tell you how you will feel.",
        ),
    ),
    "oral-ketamine": Topic(
        route="oral-ketamine",
        title="Ketamine tablets with psychotherapy (KAP)",
        summary=(
            "In ketamine-assisted psychotherapy you let a tablet dissolve under your tongue or in your "
            "cheek during a session with your therapist. About a third of the medicine reaches the "
            "blood this way."
        ),
        sections=(
            Section(
                "How the therapy is arranged",
                (
                    "First a preparation session with your therapist. Then dosing sessions, each followed "
                    "within a few days by an integration session in which you make sense of the "
                    "experience together.",
                ),
            ),
        ),
        effects_last=(
            "Effects start more slowly than with a drip and settle over the following hours; your "
            "therapist stays with you until you are ready."
        ),
        source="Andrade, J Clin Psychiatry 2019 (absorption); KAP practice (sessions)",
    ),
}

AFTER_SESSION = (
    "Do not drive, cycle or operate machines until the next day, after a restful night's sleep.",
    "Have a responsible adult take you home.",
    "Tell the clinic about any new medicines before your next visit.",
)


@dataclass(frozen=True)
class Curve:
    svg: str
    model_citations: tuple[str, ...]
    explanation: str
    time_below: str  # the range sentence (racemic ketamine only), "" otherwise
    band_source: str


@lru_cache(maxsize=8)
def curve_for(route: str) -> Curve | None:
    """The population-estimate curve for a typical adult (computed once per process), built
    by the same forecast as the plan and session pages: for IV ketamine the four shipped
    models, the venous range and the time below 100 ng/mL as the range across them."""
    topic = TOPICS[route]
    if topic.curve is None:
        return None
    regimen, weight, explanation = topic.curve
    fc = forecast(regimen(), weight_kg=weight, hours=6)
    below = fc.time_below
    return Curve(
        svg=fc.svg(hours=6),
        model_citations=tuple(p.model.source for p in fc.predictions),
        explanation=explanation,
        time_below=(
            ""
            if below is None or below.low is None
            else (
                f"For a typical 70 kg adult the four models estimate that the level falls below "
                f"100 ng/mL between about {below.low:.0f} and {below.high:.0f} minutes after "
                "the drip starts."
            )
        ),
        band_source="" if fc.band is None else fc.band.source,
    )
