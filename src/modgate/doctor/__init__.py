"""Finds what will break go mod download in a repository's files (``modgate doctor``).

:func:`modgate.doctor.scan.scan` is the entry point; :mod:`.catalog` defines
every rule. :mod:`.parsers` reads the files, :mod:`.analyzers` holds one
module per kind of file, :mod:`.env` checks the live environment
(``--env``) and :mod:`.output` writes the findings (text, JSON, SARIF).
"""
