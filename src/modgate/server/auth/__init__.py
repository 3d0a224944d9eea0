"""Authentication and read grants for the server.

``credentials`` reads the Authorization header, ``tokens`` keeps modgate's
own tokens (hashes only), ``jwks`` and ``oidc`` verify OIDC ID tokens,
``resolver`` turns credentials into an identity once per token, ``gate``
decides each request with ``modgate.protocol.grants`` (verdicts cached per
connection for the hot path), ``audit`` and ``ratelimit`` record and limit,
``messages`` writes what the go command shows, ``settings`` and ``setup``
build it all from the configuration.
"""
