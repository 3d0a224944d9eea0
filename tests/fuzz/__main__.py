"""``python -m fuzz TARGET [libFuzzer options] [corpus dirs]`` (run from ``tests/``).

The modgate modules are instrumented for coverage before they are imported.
Options and corpus directories are libFuzzer's: ``-runs=N``,
``-max_total_time=S``, ``-seed=N``, ``-artifact_prefix=DIR/``; new inputs
are written to the first corpus directory. ``python -m fuzz --list`` names
the targets.
"""

from __future__ import annotations

import sys

import atheris

# atheris selects by top-level package: every modgate module imported is instrumented
with atheris.instrument_imports(include=["modgate"]):
    from fuzz.targets import TARGETS, every


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help", "--list"):
        print("usage: python -m fuzz TARGET [libFuzzer options] [corpus dirs]")
        print("targets: " + ", ".join(TARGETS) + ", all (every target, the first byte picks)")
        sys.exit(0 if len(sys.argv) >= 2 else 2)
    name = sys.argv[1]
    target = every if name == "all" else TARGETS.get(name)
    if target is None:
        print(f"unknown fuzz target {name!r}; targets: {', '.join(TARGETS)}, all", file=sys.stderr)
        sys.exit(2)
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
