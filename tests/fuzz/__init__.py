"""Coverage-guided fuzzing of modgate's parsers with atheris (libFuzzer for Python).

Each target in :mod:`fuzz.targets` takes arbitrary bytes and feeds them to one
parser, accepting only the errors that parser documents and checking its
invariants (round trips, idempotence). Anything else is a crash: libFuzzer
stops and writes the input to a ``crash-*`` file. Every crash found becomes
a file in ``tests/data/fuzz/<target>/`` (replayed by the test suite forever)
and a fix.

Run from ``tests/``: ``python -m fuzz TARGET [libFuzzer options] [corpus dirs]``,
or ``scripts/fuzz TARGET [SECONDS]`` from the repository root.
"""
