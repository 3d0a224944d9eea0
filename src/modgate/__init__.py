"""modgate: a Go module gateway.

Layers, from the bottom up (imports point downward only, checked by
import-linter in the test command):

    protocol  paths, versions, escaping, GOPROXY/GOPRIVATE syntax (pure)
    formats   module zips, dirhash h1, go.mod parsing (pure)
    store     where artifacts live (filesystem)
    sources   where artifacts come from (upstream proxies, direct)
    service   fetch coordination: singleflight, retries, TTLs, verification
    server    HTTP: the GOPROXY protocol, health, metrics
    config    settings from flags, MODGATE_* variables and TOML
    cli       the ``modgate`` command
"""

__version__ = "0.1.0"
