"""Recognize the error answers of a modgate gateway in a build log.

When GOPROXY (or GOSUMDB) points at modgate, a failed request shows in the
log as the go command's status line (``reading https://gw/...: 404 Not
Found``) followed by ``server response:`` and the first lines of modgate's
text body. A generic reading of that status line would give generic advice
(add ``,direct``, check the proxy), which is wrong for a gateway that is
working as configured: its body says what happened, and these patterns map
each kind of modgate answer to modgate's own cause and fix.

The phrases are modgate's own wording (see ``src/modgate`` error messages:
service, sources, store, server and auth). A test walks every error message
modgate can send and checks it is recognized here, so a new message without
a pattern fails the test suite.
"""

from __future__ import annotations

import re

from modgate.diagnose.causes import CauseId

GATEWAY_CONFIDENCE = 0.97
"""An answer in modgate's own words is as sure as a finding gets."""

_PATTERNS: tuple[tuple[CauseId, tuple[str, ...]], ...] = (
    (CauseId.MODGATE_FETCH_DISABLED, (r"fetching is disabled \(upstream 'off'\)",)),
    (CauseId.MODGATE_RETAG_REFUSED, (
        r"re-tagged", r"altered at its source", r"content was altered",
        r"serves tampered content", r"recorded in checksum log", r"the store was modified; refused",
    )),
    (CauseId.MODGATE_AUTH_REQUIRED, (
        r"authentication required \((?:this module is private|anonymous reads are off)",
        r"credentials refused: ", r"too many failed authentications",
        r"cannot verify the credentials now", r"^laptop: add to ~/\.netrc: ",
        r"^CI and pods: GOAUTH=",
    )),
    (CauseId.MODGATE_ACCESS_DENIED, (r"may not read this module \(", r"for a grant that covers")),
    (CauseId.MODGATE_NOT_IN_SUMDB, (
        r"so it cannot be verified; if it is a private module",
        r"not verified against checksum database",
    )),
    (CauseId.MODGATE_SUMDB_FAILED, (
        r"checksum database is failing", r"cannot reach checksum database",
        r"misbehaved: .*refusing to trust it", r"check the network or --sumdb",
        r"sent an answer that does not verify", r"checksum database \S+ is not proxied here",
        r"expected /sumdb/", r"no checksum database \S+ here", r"no checksum database is served",
        r"not in checksum log", r"not recorded in checksum log", r"only tiles of height",
        r"checksum database path", r"invalid tile syntax", r"invalid module@version syntax",
        r"where the checksum database can be reached", r"pass --verify-sumdb off",
    )),
    (CauseId.MODGATE_STORE_ERROR, (
        r"check the store's disk", r"is not a regular file; remove it", r"vanished from the store",
        r"after it was stored", r"is damaged; (?:restore it|remove _modgate)",
        r"are not in the log", r"page \S+ of checksum log \S+ is short",
        r"is missing from the log", r"is signed with the key", r"^(?:\S+: )?internal error$",
        r"<store>", r"which the store refuses", r"check the store's permissions",
        r"invalid meta name", r"leads outside the store",
        # the S3 store, its local disk cache and coordination through Redis
        r"local disk cache \(--store-cache\)", r"the S3 store's local folder",
        r"a temp file for the S3 store", r"a fetched artifact's temp file",
        r"the object store has no bucket", r"concurrent writes conflict",
        r"check the object store's endpoint", r"ended before this write \(fencing token",
        r"not appended to without Redis", r"coordination through Redis is down",
    )),
    (CauseId.MODGATE_INVALID_MODULE, (
        r"\.info (?:is|has|Version|Time|Origin)\b", r"serves a broken \.info",
        r"proxy returned info for version", r"query resolved to .*unusable here",
        r"no module zip can exist for it", r"go\.mod is larger than", r"invalid go\.mod: ",
        r"the zip's go\.mod differs", r"resolved the query to invalid version",
        r"the proxy's zip is unreadable", r"the stored zip cannot be read",
        r"source cache was modified",
    )),
    (CauseId.MODGATE_UPSTREAM_FAILED, (
        r"install git on the modgate server", r"authentication failed for \S+ \(",
        r"git refused the transport of", r"timed out reading \S+: ", r"repository \S+ not found: ",
        r"git failed for ", r"upstream answer is too large", r"bytes per \S+ s; check the upstream",
        r"did not accept a connection within", r"no free connection to",
        r"did not take the request within", r"did not answer within",
        r"TLS certificate of .* rejected", r"TLS handshake with .* failed",
        r"cannot resolve the host of", r"cannot connect to \S+: ",
        r"the HTTP proxy failed the request to", r"redirected too many times",
        r"cannot (?:connect to|resolve) the proxy \S+ \(from \S+\)",
        r"the proxy \S+ \(from \S+\) failed the request to",
        r"the connection to .* broke during", r"redirected to an unsupported URL scheme",
        r"sent an answer modgate cannot read", r"answered without Content-Length",
        r"vanished from the mirror", r"bytes or more, over the limit",
        r"is larger than \S+ bytes; refusing it", r"; check --upstream",
        r"answered \S+ \S+.*; (?:check the credentials for this upstream|the upstream is failing)",
        r"sent more than \S+ bytes", r"leads outside \S+; refusing it",
        r"check the file:// upstream's permissions",
    )),
    (CauseId.MODGATE_BAD_REQUEST, (
        r"request path (?:too long|must start|holds|is not UTF-8)",
        r"request head (?:too large|not received)", r"request-target longer than",
        r"more than \S+ header fields", r"header fields longer than",
        r"requests to this server must not have a body", r"malformed request: ",
        r"takes no query string",
        r"not a module proxy path", r"malformed @v/ file name", r"no such file @v/",
        r"bad percent-escape at offset", r"\.mod and \.zip (?:need a|are served for) canonical",
        r"cannot start with '@'", r"disallowed version string", r"bad escaping: use '!'",
        r"not a valid file name", r"method \S+ not allowed; use GET",
    )),
)  # fmt: skip
_COMPILED = tuple((cause, re.compile("|".join(phrases))) for cause, phrases in _PATTERNS)


def gateway_cause(text: str) -> CauseId | None:
    """The modgate cause of one line of a ``server response:`` body, or None."""
    # Only body lines of failed requests come here: few enough to try every pattern.
    for cause, pattern in _COMPILED:
        if pattern.search(text):
            return cause
    return None
