"""``modgate admission``: a Kubernetes validating admission webhook for Go settings."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import click

from modgate.admission.review import Policy
from modgate.admission.webhook import AdmissionServer
from modgate.cli.doctor import load_doctor_config
from modgate.cli.jsonlog import setup as setup_logging
from modgate.config.values import parse_listen
from modgate.doctor.findings import Severity
from modgate.server.tls import TlsCertificate, TlsError

SEVERITIES = ("error", "warning", "note")

ADMISSION_EPILOG = """\b
The API server sends every Pod and workload (Deployment, StatefulSet,
DaemonSet, Job, CronJob, ReplicaSet) that the webhook configuration selects
to POST /validate. modgate runs doctor's rules on it: findings at or above
--deny-on deny the request with each rule ID, line and fix in the message;
findings from --warn-on up to --deny-on are returned as warnings, which
kubectl prints. GET /healthz is for probes. SIGHUP reloads the TLS pair.

\b
Rules are configured as for 'modgate doctor' (--config FILE):
    disable = ["GM005"]
    [severity]
    GM010 = "error"       # deny GOINSECURE=* instead of warning

\b
Manifests: deploy/kubernetes/admission/ (Deployment, Service and the
ValidatingWebhookConfiguration with failurePolicy and namespaceSelector).
Exit codes: 2 for a bad flag, certificate or configuration file.
"""


@click.command(
    "admission", epilog=ADMISSION_EPILOG, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option(
    "--listen",
    default="0.0.0.0:8443",
    show_default=True,
    metavar="HOST:PORT",
    help="Address to serve HTTPS on.",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="PEM certificate chain the API server trusts (caBundle of the webhook).",
)
@click.option(
    "--tls-key",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="PEM private key of --tls-cert; must not be readable by others.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Doctor rule configuration (.modgate-doctor.toml format).",
)
@click.option(
    "--deny-on",
    type=click.Choice(SEVERITIES),
    default="error",
    show_default=True,
    help="Deny objects with findings of this severity or a higher one.",
)
@click.option(
    "--warn-on",
    type=click.Choice(SEVERITIES),
    default="warning",
    show_default=True,
    help="Return findings from this severity up to --deny-on as warnings.",
)
@click.option("--log-level", default="info", show_default=True, help="debug, info, warning, error")
def admission_command(  # noqa: PLR0917 - one parameter per option, as click passes them
    listen: str,
    tls_cert: Path,
    tls_key: Path,
    config_file: Path | None,
    deny_on: str,
    warn_on: str,
    log_level: str,
) -> None:
    """Serve a validating admission webhook that checks the Go settings of Pods."""
    setup_logging(log_level)
    host, port = parse_listen(
        listen, lambda why: click.BadParameter(f"{listen!r}: {why}", param_hint="--listen")
    )
    config = load_doctor_config(config_file)
    deny, warn = Severity.parse(deny_on), Severity.parse(warn_on)
    if warn > deny:
        raise click.UsageError(f"--warn-on {warn_on} is above --deny-on {deny_on}")
    try:
        tls = TlsCertificate(tls_cert, tls_key)
    except TlsError as exc:
        raise click.UsageError(str(exc)) from exc
    server = AdmissionServer((host, port), Policy(config, deny, warn), tls)

    def on_hup(_signum: int, _frame: FrameType | None) -> None:
        server.reload()

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGTERM, on_term)
    bound_host, bound_port = server.server_address[:2]
    click.echo(f"modgate admission: serving https://{bound_host!s}:{bound_port}/validate", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
