"""The error tree shared by every layer.

::

    ModgateError
     ├── InvalidRequestError      malformed path or version        -> 400
     ├── NotFoundError            no such module or version        -> 404
     │    └── GoneError           removed for good                 -> 410
     ├── InvalidModuleError       content breaks the module rules  -> 404
     ├── UpstreamError            an upstream failed (not "absent") -> 502
     │    └── UpstreamTimeoutError                                  -> 504
     ├── OverloadedError          too much work under way; retry   -> 503
     └── StoreError               modgate's own storage failed     -> 500

Each error carries its subject (``module@version`` or a module path) and a
one-line reason that says what to do next. Messages never carry credentials:
callers pass redacted URLs only.
"""

from __future__ import annotations


class ModgateError(Exception):
    """Base of every error modgate raises on purpose."""

    status = 500

    def __init__(self, subject: str, reason: str) -> None:
        super().__init__(subject, reason)
        self.subject = subject
        self.reason = reason

    def __str__(self) -> str:
        if not self.subject:
            return self.reason
        return f"{self.subject}: {self.reason}"


class InvalidRequestError(ModgateError):
    status = 400


class NotFoundError(ModgateError):
    status = 404


class GoneError(NotFoundError):
    status = 410


class InvalidModuleError(ModgateError):
    """The module's content breaks the module rules; it can never be served."""

    status = 404


class UpstreamError(ModgateError):
    status = 502


class UpstreamTimeoutError(UpstreamError):
    status = 504


class OverloadedError(ModgateError):
    """modgate has as much work under way as it allows itself; the client may retry."""

    status = 503


class StoreError(ModgateError):
    status = 500
