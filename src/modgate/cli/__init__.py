"""The ``modgate`` command.

Exit codes everywhere: 0 success, 1 findings or refused artifacts, 2 usage
or environment errors (bad flags, bad configuration, unreadable paths).
"""

from __future__ import annotations

import click

from modgate import __version__
from modgate.cli.admission import admission_command
from modgate.cli.auth import auth_command
from modgate.cli.diagnose import diagnose_command
from modgate.cli.doctor import doctor_command
from modgate.cli.goauth import goauth_command
from modgate.cli.importcmd import import_command
from modgate.cli.serve import serve_command
from modgate.cli.store import store_command
from modgate.cli.sumdb import sumdb_command
from modgate.cli.token import token_command
from modgate.cli.verify import verify_command


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="modgate")
def cli() -> None:
    """modgate: a Go module gateway.

    Point GOPROXY at 'modgate serve' and builds keep working when upstream
    proxies are down, private modules stay private, and every artifact is
    verified before it is served.
    """


cli.add_command(serve_command)
cli.add_command(import_command)
cli.add_command(doctor_command)
cli.add_command(diagnose_command)
cli.add_command(sumdb_command)
cli.add_command(verify_command)
cli.add_command(admission_command)
cli.add_command(store_command)
cli.add_command(token_command)
cli.add_command(auth_command)
cli.add_command(goauth_command)


def main() -> None:
    cli(prog_name="modgate")
