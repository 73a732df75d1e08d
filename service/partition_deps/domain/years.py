"""The calendar the service answers for: questions, definitions and timestamps in these years."""

FIRST_YEAR = 1900
LAST_YEAR = 2299
# Tick tables hold one more year, so that the last window of LAST_YEAR has an end.
FIRST_TABLE_YEAR, LAST_TABLE_YEAR = FIRST_YEAR, LAST_YEAR + 1
