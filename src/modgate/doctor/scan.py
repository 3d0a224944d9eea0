"""Finding the files doctor reads, and running every analyzer over them.

Files are classified by name: Dockerfiles (``Dockerfile``, ``Containerfile``,
``Dockerfile.*``, ``*.Dockerfile``), ``.dockerignore`` files, GitHub Actions
workflows (``.github/workflows/*.yml``), GitLab CI files
(``.gitlab-ci.yml``, ``*.gitlab-ci.yml``, ``.gitlab/**/*.yml``),
Jenkinsfiles, other YAML files that look like Kubernetes manifests, shell
scripts (``*.sh``, ``*.bash``), env files (``.env``, ``*.env``, ``.envrc``)
and ``go.mod``. Directories ``.git``, ``node_modules``, ``vendor``,
``testdata`` and virtualenvs are skipped, as are paths matching the
configuration's ``exclude`` globs.

The order matters: go.mod files first (their module paths feed the pattern
rules), ConfigMaps before workloads, and go.mod against golang images last.
"""

from __future__ import annotations

import enum
import fnmatch
import os
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from modgate.doctor.analyzers import (
    ci,
    dockerfile,
    dockerignore,
    gitlab,
    goenv,
    gomod,
    jenkins,
    kube,
    makefile,
    netrc,
)
from modgate.doctor.analyzers.context import RepoContext
from modgate.doctor.analyzers.shell import check_script, setting_of
from modgate.doctor.config import DoctorConfig
from modgate.doctor.env.effective import GoEnv
from modgate.doctor.env.envcheck import EnvOptions, check_environment
from modgate.doctor.findings import Finding
from modgate.doctor.parsers import helm
from modgate.doctor.parsers.shellparse import parse_script
from modgate.doctor.parsers.yamlnodes import YamlError
from modgate.doctor.report import Reporter

SKIPPED_DIRECTORIES = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "vendor",
        "testdata",
        ".venv",
        "venv",
        "__pycache__",
        ".tox",
    }
)
MAX_FILE_BYTES = 4 << 20
"""Files larger than this are not configuration; they are skipped."""
_YAML_SUFFIXES = (".yml", ".yaml")
_KUBE_MARKERS = ("kind:",)


class Kind(enum.Enum):
    GOMOD = "go.mod"
    DOCKERFILE = "Dockerfile"
    DOCKERIGNORE = ".dockerignore"
    WORKFLOW = "GitHub Actions workflow"
    GITLAB = "GitLab CI file"
    JENKINS = "Jenkinsfile"
    YAML = "YAML"
    SHELL = "shell script"
    ENVFILE = "env file"
    GOSUM = "go.sum"
    VENDOR = "vendor/modules.txt"
    NETRC = "netrc file"
    MAKEFILE = "Makefile"
    HELM = "Helm template"
    BUILDFILE = "build file"
    """docker-bake and compose files: read only for the --build-arg values they pass."""


_NOT_BUILD_FILES = frozenset({Kind.GOMOD, Kind.GOSUM, Kind.VENDOR})
"""Every other file may pass --build-arg values to a Dockerfile (see RepoContext)."""


def classify(relative: str) -> Kind | None:
    name = posixpath.basename(relative)
    lower = name.lower()
    directory = posixpath.dirname(relative)
    if name == "go.mod":
        return Kind.GOMOD
    if name == "go.sum":
        return Kind.GOSUM
    if lower in ("dockerfile", "containerfile") or lower.startswith(
        ("dockerfile.", "containerfile.")
    ):
        return Kind.DOCKERFILE if not lower.endswith(".dockerignore") else Kind.DOCKERIGNORE
    if lower.endswith((".dockerfile", ".containerfile")):
        return Kind.DOCKERFILE
    if lower == ".dockerignore" or lower.endswith(".dockerignore"):
        return Kind.DOCKERIGNORE
    if netrc.is_netrc_file(name):
        return Kind.NETRC
    if lower in ("makefile", "gnumakefile") or lower.endswith(".mk"):
        return Kind.MAKEFILE
    if lower.startswith(("docker-bake", "docker-compose", "compose.")) and lower.endswith(
        (*_YAML_SUFFIXES, ".hcl", ".json")
    ):
        return Kind.BUILDFILE
    if lower.endswith(_YAML_SUFFIXES):
        if posixpath.basename(directory) == "templates" or "/templates/" in f"/{directory}/":
            return Kind.HELM
        if directory.endswith(".github/workflows") or directory == ".github/workflows":
            return Kind.WORKFLOW
        if lower.endswith((".gitlab-ci.yml", ".gitlab-ci.yaml")) or lower == ".gitlab-ci.yml":
            return Kind.GITLAB
        if directory == ".gitlab" or directory.startswith(".gitlab/"):
            return Kind.GITLAB
        return Kind.YAML
    if lower == "jenkinsfile" or lower.startswith("jenkinsfile.") or lower.endswith(".jenkinsfile"):
        return Kind.JENKINS
    if lower.endswith((".sh", ".bash")):
        return Kind.SHELL
    if lower in (".env", ".envrc") or lower.endswith(".env"):
        return Kind.ENVFILE
    return None


@dataclass(slots=True)
class ScanResult:
    findings: list[Finding]
    files: int
    skipped: list[str] = field(default_factory=list)
    """Files that could not be read or parsed, with the reason."""
    requires: list[goenv.ModuleRef] = field(default_factory=list)
    """Modules required by the go.mod files found."""
    go_env: GoEnv | None = None
    """The effective go settings, when the live environment was checked."""
    templates: int = 0
    """Helm templates read with their ``{{ }}`` actions as unknown values."""
    templates_unread: int = 0
    """Helm templates that are not YAML even so (their structure is templated)."""


def _excluded(relative: str, patterns: tuple[str, ...]) -> bool:
    return any(
        fnmatch.fnmatchcase(relative, p) or fnmatch.fnmatchcase(relative, p.rstrip("/") + "/*")
        for p in patterns
    )


def discover(root: Path, exclude: tuple[str, ...] = ()) -> dict[str, Kind]:
    """Relative POSIX path -> kind, for every file doctor reads under ``root``."""
    found: dict[str, Kind] = {}
    stack = [""]
    while stack:
        relative_dir = stack.pop()
        try:
            entries = list(os.scandir(root / relative_dir if relative_dir else root))
        except OSError:
            continue
        for entry in entries:
            relative = f"{relative_dir}/{entry.name}" if relative_dir else entry.name
            if _excluded(relative, exclude):
                continue
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in SKIPPED_DIRECTORIES:
                    stack.append(relative)
                elif entry.name == "vendor" and (Path(entry.path) / "modules.txt").is_file():
                    found[f"{relative}/modules.txt"] = Kind.VENDOR
                continue
            kind = classify(relative)
            if kind is not None and entry.is_file():
                found[relative] = kind
    return dict(sorted(found.items()))


Analyzer = Callable[[str, str, RepoContext], None]


def scan(
    path: Path, config: DoctorConfig | None = None, env: EnvOptions | None = None
) -> ScanResult:
    """Scan a directory (or one file), and the live environment when ``env`` is given.

    Returns the findings kept after the configuration and ``modgate-ignore`` comments.
    """
    config = config or DoctorConfig()
    root = path if path.is_dir() else path.parent
    if path.is_dir():
        files = discover(root, config.exclude)
    else:
        kind = classify(path.name)
        files = {path.name: kind} if kind is not None else {}
    reporter = Reporter(config)
    ctx = RepoContext(root, reporter)
    result = ScanResult([], 0)
    texts: dict[str, str] = {}
    templated: set[str] = set()
    for relative, found_kind in files.items():
        if found_kind in (Kind.GOSUM, Kind.VENDOR):
            continue
        kind = found_kind
        if kind is Kind.HELM and not _in_chart(root, relative):
            kind = files[relative] = Kind.YAML
        text = _read(root / relative, relative, result)
        if text is None:
            continue
        if kind is Kind.HELM or (kind is Kind.YAML and helm.is_templated(text)):
            text = helm.render_unknown(text)
            kind = files[relative] = Kind.YAML
            templated.add(relative)
            result.templates += 1
        if kind is Kind.YAML and not any(marker in text for marker in _KUBE_MARKERS):
            continue
        texts[relative] = text
        ctx.remember(relative, text)
        reporter.read_suppressions(relative, text)
    result.files = len(texts)
    ctx.build_files = [
        r for r, k in files.items() if k not in (Kind.GOMOD, Kind.GOSUM, Kind.VENDOR)
    ]
    gomods: dict[str, gomod.GoModFacts] = {}
    for relative in (r for r in texts if files[r] is Kind.GOMOD):
        directory = posixpath.dirname(relative)
        sibling = posixpath.join(directory, "go.sum") if directory else "go.sum"
        vendor = (
            posixpath.join(directory, "vendor/modules.txt") if directory else "vendor/modules.txt"
        )
        facts = gomod.check_gomod(
            relative,
            texts[relative],
            ctx,
            has_gosum=(root / sibling).is_file(),
            has_vendor=(root / vendor).is_file(),
        )
        if facts is not None:
            gomods[relative] = facts
            if facts.go is not None:
                ctx.go_lines[relative] = facts.go
            if facts.requires and not (root / vendor).is_file():
                ctx.unvendored.add(relative)
    maps = kube.ConfigMaps()
    analyzers: dict[Kind, Analyzer] = {
        Kind.DOCKERFILE: dockerfile.check_dockerfile,
        Kind.WORKFLOW: ci.check_workflow,
        Kind.GITLAB: gitlab.check_gitlab,
        Kind.JENKINS: jenkins.check_jenkinsfile,
        Kind.SHELL: _check_shell,
        Kind.ENVFILE: _check_envfile,
        Kind.MAKEFILE: makefile.check_makefile,
        Kind.YAML: lambda f, t, c: kube.check_manifest(f, t, maps, c),
    }

    def kube_maps(file: str, text: str, ctx: RepoContext) -> None:
        kube.collect_configmaps(file, text, maps, ctx)

    go_files = [r for r, k in files.items() if k in (Kind.GOMOD, Kind.GOSUM)]
    yaml_files = [r for r in texts if files[r] is Kind.YAML]
    broken = {
        r
        for r in yaml_files
        if not _guarded(kube_maps, r, texts[r], ctx, result, quiet=r in templated)
    }
    for relative, text in texts.items():
        kind = files[relative]
        if relative in broken or kind is Kind.DOCKERIGNORE:
            continue
        analyzer = analyzers.get(kind)
        if analyzer is not None:
            _guarded(analyzer, relative, text, ctx, result)
    # after every Dockerfile: which go.mod files a build copies is known only then
    replaced = frozenset(d for facts in gomods.values() for d in facts.local_replaces)
    for relative, text in texts.items():
        if files[relative] is Kind.DOCKERIGNORE:
            dockerignore.check_dockerignore(relative, text, ctx, go_files, replaced)
    gomod.check_images(gomods, ctx)
    netrc.check(texts, {r for r in texts if files[r] is Kind.NETRC}, reporter)
    result.requires = [ref for facts in gomods.values() for ref in facts.requires]
    if env is not None:
        result.go_env = check_environment(env, result.requires, reporter)
    result.findings = reporter.findings()
    return result


def _in_chart(root: Path, relative: str) -> bool:
    """Whether ``relative`` is under the ``templates/`` directory of a Helm chart."""
    directory = posixpath.dirname(relative)
    while directory:
        if posixpath.basename(directory) == "templates":
            parent = posixpath.dirname(directory)
            chart = f"{parent}/Chart.yaml" if parent else "Chart.yaml"
            return (root / chart).is_file()
        directory = posixpath.dirname(directory)
    return False


def _guarded(
    analyzer: Analyzer,
    relative: str,
    text: str,
    ctx: RepoContext,
    result: ScanResult,
    *,
    quiet: bool = False,
) -> bool:
    """Run one analyzer; a file that is not valid YAML is recorded as skipped (False).

    ``quiet``: a Helm template whose templating leaves no YAML is unknown, not an error.
    """
    try:
        analyzer(relative, text, ctx)
    except YamlError as exc:
        if quiet:
            result.templates_unread += 1
        else:
            result.skipped.append(f"{relative}: not valid YAML ({exc})")
        return False
    return True


def _read(path: Path, relative: str, result: ScanResult) -> str | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            result.skipped.append(f"{relative}: larger than {MAX_FILE_BYTES} bytes")
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        result.skipped.append(f"{relative}: {exc.strerror or exc}")
        return None


def _check_shell(file: str, text: str, ctx: RepoContext) -> None:
    run = check_script(text, 1, file, goenv.Scope(), ctx)
    goenv.check_scope(run.scope, ctx.report)
    for _, scope in run.go_calls:
        goenv.check_scope(scope, ctx.report)


def _check_envfile(file: str, text: str, ctx: RepoContext) -> None:
    scope = goenv.Scope()
    for cmd in parse_script(text):
        for word in cmd.words:
            setting = setting_of(word, file)
            if setting is not None:
                goenv.check_setting(setting, ctx.modules, ctx.report)
                scope.settings[setting.name] = setting
    goenv.check_scope(scope, ctx.report)
