"""Questionnaire instruments for ketaflow (pure Python, no Django).

Public API:
    get(code) -> Instrument, all_instruments(), codes()
    score(code, answers, *, settings=None) -> ScoreResult
    ScoringError (ValueError with .item), UnknownInstrumentError
    sedation(pre, post) -> bool                      (MOAA/S)
    outcomes.compare(...), outcomes.evaluate_series(...), outcomes.baseline_of(...)
    fhir.to_fhir_questionnaire(...), fhir.to_fhir_questionnaire_response(...)
    cli.main(argv) -> int
"""

from .fhir import to_fhir_questionnaire, to_fhir_questionnaire_response
from .forms.moaas import sedation
from .model import Band, ChangeThreshold, Cutoff, Instrument, Item, Option
from .outcomes import Outcome, SeriesOutcome, baseline_of, compare, evaluate_series
from .registry import all_instruments, codes, get
from .scoring import score
from .validation import ScoreResult, ScoringError, UnknownInstrumentError

__all__ = [
    "Band",
    "ChangeThreshold",
    "Cutoff",
    "Instrument",
    "Item",
    "Option",
    "Outcome",
    "ScoreResult",
    "ScoringError",
    "SeriesOutcome",
    "UnknownInstrumentError",
    "all_instruments",
    "baseline_of",
    "codes",
    "compare",
    "evaluate_series",
    "get",
    "score",
    "sedation",
    "to_fhir_questionnaire",
    "to_fhir_questionnaire_response",
]
