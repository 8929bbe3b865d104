"""`ketaflow score CODE ITEM=VALUE ...` — score a questionnaire from the command line.

main(argv) takes the arguments after the word "score". It prints one JSON object
(ScoreResult.as_dict()) to stdout and returns 0, or prints a one-line message to
stderr and returns 2. `--list` prints the instrument codes, one per line.
"""

from __future__ import annotations

import json
import sys

from .registry import codes, get
from .scoring import score
from .validation import ScoringError, UnknownInstrumentError

USAGE = "usage: ketaflow score CODE ITEM=VALUE ... | ketaflow score --list"
EXIT_OK = 0
EXIT_USAGE = 2


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: list[str]) -> int:
    if argv == ["--list"]:
        for code in codes():
            print(code)
        return EXIT_OK
    if not argv or argv[0].startswith("-"):
        return _fail(USAGE)
    code, pairs = argv[0], argv[1:]
    try:
        instrument = get(code)
    except UnknownInstrumentError as exc:
        return _fail(str(exc))
    answers: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            return _fail(f"malformed answer {pair!r}: expected ITEM=VALUE, e.g. 1=2")
        if key in answers:
            return _fail(f"item {key}: answered more than once")
        answers[key] = value
    try:
        result = score(instrument.code, answers)
    except ScoringError as exc:
        return _fail(f"{instrument.short_name} {exc}")
    print(json.dumps(result.as_dict(), ensure_ascii=False))
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
