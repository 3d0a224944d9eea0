"""``doctor --env``: checks of the live environment rather than of files.

- :mod:`.envcheck`: the checks (caches, each GOPROXY entry, the checksum database, git).
- :mod:`.effective`: the go command's effective settings (``go env -json`` or computed).
- :mod:`.probe`: one request to a proxy or checksum database, classified the way go sees it.
"""
