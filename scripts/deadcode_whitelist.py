"""Names the dead-code check (vulture, run by scripts/test) must not report.

Each name here is called by a framework, not by modgate's own code: vulture
sees the definition and no caller. A name only goes here with the caller
named; anything else vulture reports is dead and is deleted instead.
Decorated callbacks (click commands, pytest fixtures) are covered by
``ignore_decorators`` in pyproject.toml's [tool.vulture].

This file is read by vulture only; it is never imported.
"""

# ruff: noqa
# mypy: ignore-errors

# asyncio.Protocol callbacks, called by the event loop (server/http.py).
_.connection_lost
_.eof_received
_.pause_writing
_.resume_writing

# httptools parser callbacks, called by HttpRequestParser.feed_data (server/http.py).
_.on_message_begin
_.on_url
_.on_header
_.on_headers_complete
_.on_message_complete

# http.server / socketserver hooks and class attributes: the request handler
# calls do_<METHOD> and log_message and reads the attributes; the server reads
# daemon_threads, block_on_close and address_family.
_.do_POST
_.do_HEAD
_.do_CONNECT
_.log_message
_.protocol_version
_.server_version
_.sys_version
_.close_connection
_.daemon_threads
_.block_on_close
_.address_family

# html.parser.HTMLParser callbacks, called by feed() (sources/vcs_resolve.py).
_.handle_starttag
_.handle_endtag

# httpcore's AsyncNetworkBackend and AsyncNetworkStream interfaces: the
# connection pool calls these (sources/hostguard.py and its test's mock stream).
_.connect_unix_socket
_.start_tls

# httpx.AsyncHTTPTransport sends every request through its _pool attribute:
# hostguard.py replaces the pool by assigning it.
_._pool

# tarfile.TarInfo fields read by TarFile.addfile (service/backup.py).
_.mtime

# pytest hooks and markers, read by pytest by name.
pytest_configure
pytest_unconfigure
pytestmark

# Static checks that a store class satisfies the Store protocol: defined under
# TYPE_CHECKING for mypy, never called (store/filesystem.py and the other stores).
_conforms
