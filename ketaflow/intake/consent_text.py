"""The default informed-consent text ketaflow ships, per route (plain language).

Every clinical fact below comes from ``clinical-reference.md`` (sections 1 to 4); the
clinic's medical director reviews and may publish a new version from the consent page.
"""

COMMON_INTRO = (
    "This form explains the treatment your clinician has offered you, so that you can decide "
    "whether to have it. Please read it all and ask about anything that is not clear. Signing "
    "it means you agree to the treatment; it does not oblige you to continue."
)

RIGHT_TO_STOP = (
    "YOUR RIGHT TO STOP\n"
    "You may refuse or stop this treatment at any time, including during a session, without "
    "losing access to your other care at this clinic. You may withdraw this consent at any time "
    "by telling a member of staff; the withdrawal is written in your record."
)

ALTERNATIVES = (
    "ALTERNATIVES\n"
    "Other options include continuing or changing antidepressant medicines, talking therapies, "
    "other treatments your clinician can discuss with you, or no new treatment. Ask your "
    "clinician which of these fit your situation."
)

RISKS = (
    "RISKS AND SIDE EFFECTS\n"
    "Common effects include feeling detached or unreal (dissociation), dizziness, nausea, "
    "vomiting, sleepiness (sedation), a spinning feeling (vertigo), numbness, anxiety, "
    "headache, blurred vision, feeling drunk, euphoria, and a rise in blood pressure and heart "
    "rate. Blood pressure rises are usually short-lived, but they matter if you have heart, "
    "blood-vessel or brain-bleeding problems, which is why we ask about them. Ketamine can "
    "cause psychotic-like effects, and it can be misused: tell us about any history of "
    "psychosis, mania or substance use. Tell us if you are or may be pregnant, or are "
    "breastfeeding. Medicines that cause drowsiness (such as benzodiazepines, sleeping tablets "
    "or opioids) add to the sedation, and stimulants and MAO inhibitors can raise blood "
    "pressure further: tell us about every medicine you take."
)

AFTER = (
    "AFTER EACH SESSION\n"
    "Do not drive, cycle or operate machinery until the next day, after a restful sleep. "
    "Arrange for someone to take you home. Contact the clinic if you feel unwell afterwards; "
    "in an emergency call your local emergency number."
)

BENEFITS = (
    "POSSIBLE BENEFITS\n"
    "Ketamine and esketamine are used for depression that has not improved enough with two or "
    "more antidepressants (treatment-resistant depression). Some people feel better within "
    "hours to days. In one trial of up to six IV infusions, about 7 in 10 people responded; "
    "among those who responded, the benefit often faded, after a median of 18 days, which is "
    "why further sessions may be offered. Treatment may not help you."
)

ROUTE_TEXT = {
    "iv-ketamine": (
        "Consent to IV ketamine treatment",
        "WHAT TO EXPECT\n"
        "Ketamine is given through a drip into a vein, usually 0.5 mg per kg of body weight "
        "over about 40 minutes. A course is often six infusions over two to three weeks, "
        "sometimes followed by booster sessions. A nurse measures your blood pressure, pulse "
        "and oxygen level before, during and after the infusion, and you stay until your "
        "clinician says you are ready to leave; blood pressure usually returns to its starting "
        "level within about an hour and a half.",
    ),
    "im-ketamine": (
        "Consent to intramuscular ketamine treatment",
        "WHAT TO EXPECT\n"
        "Ketamine is given as an injection into a muscle, usually starting near 0.5 mg per kg "
        "of body weight. Staff check your blood pressure, pulse and oxygen level before and "
        "after the injection, and you stay until your clinician says you are ready to leave.",
    ),
    "sc-ketamine": (
        "Consent to subcutaneous ketamine treatment",
        "WHAT TO EXPECT\n"
        "Ketamine is given as an injection under the skin, usually 0.5 mg per kg of body "
        "weight (sometimes up to 0.9 mg per kg), twice a week for four weeks in the trial this "
        "schedule comes from. Staff check your blood pressure, pulse and oxygen level before "
        "and after, and you stay until your clinician says you are ready to leave.",
    ),
    "oral-ketamine": (
        "Consent to oral or sublingual ketamine treatment",
        "WHAT TO EXPECT\n"
        "Ketamine is taken by mouth or dissolved under the tongue, often together with "
        "psychotherapy: a preparation session, then dosing sessions each followed within days "
        "by an integration session. Less of the medicine reaches the blood this way, so the "
        "doses are larger than by injection. Staff check how you are before and after, and you "
        "stay until your clinician says you are ready to leave.",
    ),
    "esketamine-nasal": (
        "Consent to esketamine nasal spray (Spravato) treatment",
        "WHAT TO EXPECT\n"
        "You use the nasal spray yourself at the clinic, under supervision: one device is 28 "
        "mg, and a dose is two or three devices five minutes apart. Usually it is twice a week "
        "for four weeks, then weekly, then weekly or every two weeks. Do not eat for 2 hours "
        "or drink for 30 minutes before a dose. Staff measure your blood pressure before the "
        "dose, about 40 minutes after and until it is stable, and watch you, with a finger "
        "oxygen monitor, for at least 2 hours after every dose. Blood pressure rises peak near "
        "40 minutes and can last about 4 hours; most other effects settle within about an "
        "hour and a half.",
    ),
}


def default_document(route: str) -> tuple[str, str]:
    """(title, body) of ketaflow's default consent for ``route``."""
    title, expect = ROUTE_TEXT[route]
    body = "\n\n".join([COMMON_INTRO, BENEFITS, expect, RISKS, AFTER, ALTERNATIVES, RIGHT_TO_STOP])
    return title, body
