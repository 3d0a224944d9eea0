"""Fixture git repositories of every shape the go command distinguishes, built deterministically.

Each repository lives in ``<root>/<name>`` and is reached by git as
``https://github.com/fixture/<name>`` through ``url.<file URL>.insteadOf`` in
a git config file (:func:`write_gitconfig`) that the tests hand to git with
``GIT_CONFIG_GLOBAL``. github.com is one of the hosting sites the go command
knows without a discovery request, so neither the go command nor modgate
ever needs the network. Author and committer dates are fixed, so commit
hashes, pseudo-versions and checksums are the same on every run.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

HOST_PREFIX = "https://github.com/fixture/"
MODULE_PREFIX = "github.com/fixture/"
BASE_TIME = 1704164645  # 2024-01-02T03:04:05Z
HOUR = 3600

_GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Fixture Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Fixture Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
    "LC_ALL": "C",
}


def git(
    repo: Path, *args: str, env: Mapping[str, str] | None = None, stdin: bytes | None = None
) -> str:
    merged = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(repo), **_GIT_ENV}
    if env:
        merged.update(env)
    proc = subprocess.run(
        ["git", *args], cwd=repo, env=merged, capture_output=True, input=stdin, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"git {' '.join(args)} failed in {repo}: {proc.stderr.decode(errors='replace')}"
        )
    return proc.stdout.decode().strip()


@dataclass
class RepoBuilder:
    """Builds one repository commit by commit; times are offsets in hours from BASE_TIME."""

    path: Path
    clock: int = 0
    commits: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.path.mkdir(parents=True)
        git(self.path, "init", "-q", "-b", "main")

    def write(self, files: Mapping[str, str | bytes]) -> RepoBuilder:
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content.encode() if isinstance(content, str) else content)
        return self

    def symlink(self, name: str, target: str) -> RepoBuilder:
        (self.path / name).symlink_to(target)
        return self

    def remove(self, *names: str) -> RepoBuilder:
        for name in names:
            (self.path / name).unlink()
        return self

    def gitlink(self, name: str, commit: str) -> RepoBuilder:
        git(self.path, "update-index", "--add", "--cacheinfo", f"160000,{commit},{name}")
        return self

    def commit(self, label: str, *, zone: str = "+0000") -> str:
        self.clock += 1
        stamp = f"{BASE_TIME + self.clock * HOUR} {zone}"
        git(self.path, "add", "-A")
        git(
            self.path,
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            label,
            env={"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp},
        )
        self.commits[label] = git(self.path, "rev-parse", "HEAD")
        return self.commits[label]

    def tag(self, name: str, commit: str | None = None, *, annotated: bool = False) -> None:
        args = ["tag"]
        if annotated:
            args += ["-a", "-m", f"release {name}"]
        stamp = f"{BASE_TIME + self.clock * HOUR} +0000"
        git(self.path, *args, name, commit or "HEAD", env={"GIT_COMMITTER_DATE": stamp})

    def branch(self, name: str, start: str) -> None:
        git(self.path, "checkout", "-q", "-b", name, start)

    def checkout(self, name: str) -> None:
        git(self.path, "checkout", "-q", name)

    def pack(self) -> None:
        git(self.path, "gc", "-q")


def gomod(path: str, go: str = "1.21", extra: str = "") -> str:
    return f"module {path}\n\ngo {go}\n{extra}"


@dataclass(frozen=True)
class Fixture:
    name: str
    modules: tuple[str, ...]
    queries: tuple[tuple[str, str], ...]
    """``(module, query)`` pairs to resolve with ``go list -m module@query``."""
    commits: Mapping[str, str]


def build_root(root: Path) -> Fixture:
    r = RepoBuilder(root / "root")
    m = MODULE_PREFIX + "root"
    r.write({"go.mod": gomod(m), "root.go": "package root\n", "LICENSE": "root license\n"})
    c1 = r.commit("c1")
    r.tag("v1.0.0")
    r.write({"root.go": "package root\n\n// v1.1.0\n"})
    r.commit("c2")
    r.tag("v1.1.0", annotated=True)
    r.tag("release-1")
    r.write({"root.go": "package root\n\n// after v1.1.0\n"})
    c3 = r.commit("c3", zone="+0100")
    r.tag("v1.3")
    r.write({"root.go": "package root\n\n// pre\n"})
    r.commit("c4")
    r.tag("v1.2.0-pre")
    r.write({"root.go": "package root\n\n// after pre\n"})
    r.commit("c5", zone="-0730")
    r.tag("v0.0.0-20200101000000-abcdefabcdef")
    r.branch("dev", "v1.1.0")
    r.write({"dev.go": "package root\n"})
    r.commit("c6")
    r.tag("v1.3.0+build")
    r.checkout("main")
    return Fixture(
        "root",
        (m,),
        (
            (m, "v1.0.0"),
            (m, "v1.1.0"),
            (m, "v1.2.0-pre"),
            (m, "main"),
            (m, "dev"),
            (m, "latest"),
            (m, c3[:8]),
            (m, c1),
            (m, "v1.3.0+build"),
            (m, "v1.1.0+meta"),
            (m, "v1.3"),
            (m, "v9.9.9"),
            (m, "nosuchbranch"),
        ),
        r.commits,
    )


def build_nomod(root: Path) -> Fixture:
    r = RepoBuilder(root / "nomod")
    m = MODULE_PREFIX + "nomod"
    r.write({"a.go": "package nomod\n"})
    r.commit("c1")
    r.tag("v1.0.0")
    r.write({"a.go": "package nomod // two\n"})
    r.commit("c2")
    r.tag("v2.0.0")
    r.write({"a.go": "package nomod // three\n"})
    r.commit("c3")
    r.tag("v2.1.0", annotated=True)
    r.write({"b.go": "package nomod\n"})
    r.commit("c4")
    queries = ("v1.0.0", "v2.0.0", "v2.1.0+incompatible", "main", "latest", "v2.0.0+incompatible")
    return Fixture("nomod", (m,), tuple((m, q) for q in queries), r.commits)


def build_v2root(root: Path) -> Fixture:
    r = RepoBuilder(root / "v2root")
    m1 = MODULE_PREFIX + "v2root"
    m2 = m1 + "/v2"
    r.write({"go.mod": gomod(m1), "a.go": "package v2root\n"})
    r.commit("c1")
    r.tag("v1.0.0")
    r.write({"go.mod": gomod(m2)})
    r.commit("c2")
    r.tag("v2.0.0")
    r.write({"a.go": "package v2root // next\n"})
    r.commit("c3")
    queries = [(m1, q) for q in ("v1.0.0", "v2.0.0", "main", "latest")]
    queries += [(m2, q) for q in ("v2.0.0", "v1.0.0", "main", "latest")]
    return Fixture("v2root", (m1, m2), tuple(queries), r.commits)


def build_v2sub(root: Path) -> Fixture:
    r = RepoBuilder(root / "v2sub")
    m1 = MODULE_PREFIX + "v2sub"
    m2 = m1 + "/v2"
    r.write({"go.mod": gomod(m1), "a.go": "package v2sub\n", "LICENSE": "license\n"})
    r.commit("c1")
    r.tag("v1.0.0")
    r.write({"v2/go.mod": gomod(m2), "v2/a.go": "package v2sub\n"})
    r.commit("c2")
    r.tag("v2.0.0")
    r.write({"v2/a.go": "package v2sub // next\n", "a.go": "package v2sub // v1 next\n"})
    r.commit("c3")
    queries = [(m1, q) for q in ("v1.0.0", "main", "latest", "v2.0.0")]
    queries += [(m2, q) for q in ("v2.0.0", "main", "latest")]
    return Fixture("v2sub", (m1, m2), tuple(queries), r.commits)


def build_nested(root: Path) -> Fixture:
    r = RepoBuilder(root / "nested")
    m = MODULE_PREFIX + "nested"
    sub = m + "/sub"
    sub2 = sub + "/v2"
    r.write(
        {
            "go.mod": gomod(m),
            "LICENSE": "nested root license\n",
            "main.go": "package nested\n",
            "vendor/modules.txt": "# example.com/dep v1.0.0\n",
            "vendor/example.com/dep/dep.go": "package dep\n",
            "vendor/top.go": "package vendor\n",
            "pkg/vendor/vendor.go": "package vendor\n",
            "pkg/x/vendor/y/y.go": "package y\n",
            "sub/go.mod": gomod(sub),
            "sub/sub.go": "package sub\n",
            "nomodule/x.go": "package nomodule\n",
        }
    )
    r.commit("c1")
    r.tag("v1.0.0")
    r.tag("sub/v1.0.0")
    r.write({"sub/sub.go": "package sub // v1.1.0\n"})
    r.commit("c2")
    r.tag("sub/v1.1.0")
    r.write({"sub/v2/go.mod": gomod(sub2), "sub/v2/sub.go": "package sub\n"})
    r.commit("c3")
    r.tag("sub/v2.0.0")
    r.write({"sub/sub.go": "package sub // later\n", "sub/v2/sub.go": "package sub // later\n"})
    r.commit("c4")
    queries = [(m, q) for q in ("v1.0.0", "main", "latest")]
    queries += [(sub, q) for q in ("v1.0.0", "v1.1.0", "main", "latest", "v2.0.0")]
    queries += [(sub2, q) for q in ("v2.0.0", "main", "latest")]
    queries += [(m + "/nomodule", "main")]
    return Fixture("nested", (m, sub, sub2), tuple(queries), r.commits)


def build_attrs(root: Path) -> Fixture:
    r = RepoBuilder(root / "attrs")
    m = MODULE_PREFIX + "attrs"
    r.write(
        {
            "go.mod": gomod(m, go="1.24"),
            ".gitattributes": "*.txt text eol=crlf\n*.go ident\nexport.go export-subst\n",
            "a.txt": "line one\nline two\n",
            "id.go": "// $Id$\npackage attrs\n",
            "export.go": "// $Format:%H$\npackage attrs\n",
            "vendor/modules.txt": "# nothing\n",
            "vendor/top.go": "package vendor\n",
            "pkg/vendor/vendor.go": "package vendor\n",
            "pkg/vendor/dep/dep.go": "package dep\n",
            "inner/.gitattributes": "*.md text eol=crlf\n",
            "inner/readme.md": "inner\nreadme\n",
        }
    )
    r.symlink("link.go", "id.go")
    r.symlink("dangling", "does/not/exist")
    r.gitlink("deps/lib", "0123456789abcdef0123456789abcdef01234567")
    r.commit("c1")
    r.tag("v1.0.0")
    return Fixture("attrs", (m,), ((m, "v1.0.0"), (m, "main")), r.commits)


def build_badname(root: Path) -> Fixture:
    r = RepoBuilder(root / "badname")
    m = MODULE_PREFIX + "badname"
    r.write({"go.mod": gomod(m), "ok.go": "package badname\n", "bad:name.txt": "bad\n"})
    r.commit("c1")
    r.tag("v1.0.0")
    return Fixture("badname", (m,), ((m, "v1.0.0"),), r.commits)


def build_retract(root: Path) -> Fixture:
    r = RepoBuilder(root / "retract")
    m = MODULE_PREFIX + "retract"
    r.write({"go.mod": gomod(m), "a.go": "package retract\n"})
    r.commit("c1")
    r.tag("v1.0.0")
    r.write({"a.go": "package retract // 1.1\n"})
    r.commit("c2")
    r.tag("v1.1.0")
    retractions = "\nretract v1.1.0 // broken\n\nretract [v1.2.0, v1.2.0] // also broken\n"
    r.write({"go.mod": gomod(m, extra=retractions)})
    r.commit("c3")
    r.tag("v1.2.0")
    r.write({"a.go": "package retract // after\n"})
    r.commit("c4")
    queries = ("v1.0.0", "v1.1.0", "v1.2.0", "main", "latest")
    return Fixture("retract", (m,), tuple((m, q) for q in queries), r.commits)


def build_untagged(root: Path) -> Fixture:
    r = RepoBuilder(root / "untagged")
    m = MODULE_PREFIX + "untagged"
    r.write({"go.mod": gomod(m), "a.go": "package untagged\n"})
    c1 = r.commit("c1")
    r.write({"a.go": "package untagged // two\n"})
    r.commit("c2", zone="+0530")
    return Fixture("untagged", (m,), ((m, "main"), (m, "latest"), (m, c1[:12])), r.commits)


BUILDERS = (
    build_root,
    build_nomod,
    build_v2root,
    build_v2sub,
    build_nested,
    build_attrs,
    build_badname,
    build_retract,
    build_untagged,
)


def build_all(root: Path) -> dict[str, Fixture]:
    """Build every fixture repository under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    return {f.name: f for f in (build(root) for build in BUILDERS)}


def write_gitconfig(path: Path, repos: Path, extra: str = "") -> Path:
    """A global git config that sends ``https://github.com/fixture/`` to the fixtures."""
    path.write_text(
        f'[url "{repos.resolve().as_uri()}/"]\n'
        f"\tinsteadOf = {HOST_PREFIX}\n"
        '[protocol "file"]\n'
        "\tallow = always\n" + extra,
        encoding="utf-8",
    )
    return path
