"""One exception for bad user input, with a short reason code so `--skip-bad` can count by reason."""

from __future__ import annotations


class BadInputError(ValueError):
    """Input that galzoo refuses: the message names the row or file and what is wrong with it."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __reduce__(self):  # keep reason and message across process boundaries
        return (type(self), (self.reason, self.message))


# Reason codes used in summaries; one place so the CLI and docs agree.
MISSING_COLUMN = "missing column"
COUNT_EXCEEDS_TOTAL = "k > N"
NEGATIVE_COUNT = "negative count"
NON_INTEGER_COUNT = "non-integer count"
COUNT_OUT_OF_RANGE = "count out of range"
DUPLICATE_ID = "duplicate id"
MISSING_IMAGE = "image missing"
PATH_ESCAPE = "path escapes image root"
UNREADABLE_IMAGE = "unreadable image"
IMAGE_TOO_LARGE = "image too large"
BAD_IMAGE_SHAPE = "bad image shape"
EMPTY_INPUT = "no galaxies"
BAD_FRACTION = "bad fraction"
INCONSISTENT_FRACTIONS = "inconsistent fractions"
