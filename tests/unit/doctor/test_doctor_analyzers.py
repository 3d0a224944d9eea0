"""How each file kind passes settings around: stages, jobs, steps, containers, blocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from modgate.doctor.scan import classify, scan


def found(tmp_path: Path, files: dict[str, str]) -> list[tuple[str, str, int]]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    result = scan(tmp_path)
    assert not result.skipped, result.skipped
    return [(f.rule, f.file, f.line) for f in result.findings]


def rules(tmp_path: Path, files: dict[str, str]) -> set[str]:
    return {rule for rule, _, _ in found(tmp_path, files)}


# --------------------------------------------------------------------------- Dockerfiles

BUILDER = "FROM golang:1.23 AS builder\nENV GOPROXY=https://goproxy.corp.example,direct\n"


def test_env_flows_to_stages_built_from_the_stage_only(tmp_path: Path) -> None:
    inherits = BUILDER + "FROM builder AS test\nCOPY go.mod go.sum ./\nRUN go mod download\n"
    assert "GM029" not in rules(tmp_path / "a", {"Dockerfile": inherits})
    fresh = BUILDER + "FROM golang:1.23 AS test\nCOPY go.mod go.sum ./\nRUN go mod download\n"
    assert ("GM029", "Dockerfile", 5) in found(tmp_path / "b", {"Dockerfile": fresh})


def test_arg_must_be_redeclared_and_takes_the_global_default(tmp_path: Path) -> None:
    text = "ARG GOFLAGS=-mod=mod\nFROM golang:1.23\nARG GOFLAGS\nCOPY . .\nRUN go build ./...\n"
    assert found(tmp_path / "a", {"Dockerfile": text}) == [("GM015", "Dockerfile", 3)]
    reference = "ARG VERSION=1\nFROM golang:1.23\nRUN go build -ldflags=-X=main.v=$VERSION .\n"
    assert ("GM029", "Dockerfile", 3) in found(tmp_path / "b", {"Dockerfile": reference})
    platform = "FROM golang:1.23\nRUN GOARCH=$TARGETARCH go build .\n"
    assert ("GM029", "Dockerfile", 2) in found(tmp_path / "c", {"Dockerfile": platform})


def test_heredoc_scripts_and_bind_mounts(tmp_path: Path) -> None:
    heredoc = "FROM golang:1.23\nRUN <<EOF\nset -e\ngo get -insecure x@v1\nEOF\n"
    assert ("GM001", "Dockerfile", 4) in found(tmp_path / "a", {"Dockerfile": heredoc})
    bound = (
        "FROM golang:1.23\nCOPY go.mod ./\n"
        "RUN --mount=type=bind,source=go.sum,target=go.sum go mod download\n"
    )
    assert "GM021" not in rules(tmp_path / "b", {"Dockerfile": bound})


def test_a_complete_root_download_leaves_nothing_to_fail_for_the_user(tmp_path: Path) -> None:
    full = (
        "FROM golang:1.23\nCOPY go.mod go.sum ./\nRUN go mod download\nUSER 1000\n"
        "COPY . .\nRUN go build ./...\n"
    )
    assert "GM024" not in rules(tmp_path / "a", {"Dockerfile": full})
    more = full + "RUN go get example.com/extra@v1.0.0\n"
    assert ("GM024", "Dockerfile", 7) in found(tmp_path / "b", {"Dockerfile": more})


def test_golang_images_pin_the_toolchain(tmp_path: Path) -> None:
    off = "ENV GOSUMDB=off\nRUN go build ./...\n"
    assert "GM013" not in rules(tmp_path / "a", {"Dockerfile": "FROM golang:1.23\n" + off})
    assert "GM013" in rules(tmp_path / "b", {"Dockerfile": "FROM debian:12\n" + off})
    auto = "FROM golang:1.23\nENV GOTOOLCHAIN=auto\n" + off
    assert "GM013" in rules(tmp_path / "c", {"Dockerfile": auto})


# --------------------------------------------------------------------------- CI files


def test_github_env_writes_reach_later_steps_and_programs_are_skipped(tmp_path: Path) -> None:
    workflow = """\
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    timeout-minutes: 5
    steps:
      - run: echo "GOPROXY=https://goproxy.corp.example,direct" >> "$GITHUB_ENV"
      - run: print("go get -insecure x")
        shell: python
      - run: go build ./...
        env:
          GOPRIVATE: corp.example
"""
    got = found(tmp_path, {".github/workflows/ci.yml": workflow})
    assert got == [("GM011", ".github/workflows/ci.yml", 12)], got


def test_expressions_are_never_judged_and_containers_pin_the_toolchain(tmp_path: Path) -> None:
    workflow = """\
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    timeout-minutes: 5
    container: golang:1.23
    env:
      GOPROXY: ${{ vars.GOPROXY }}
      GOSUMDB: "off"
    steps:
      - run: go build ./...
"""
    assert rules(tmp_path, {".github/workflows/ci.yml": workflow}) == set()


def test_gitlab_default_image_and_variable_objects(tmp_path: Path) -> None:
    text = """\
default:
  image: golang:1.23
variables:
  GOFLAGS:
    value: "-mod=mod"
    description: set by the platform team
  GOSUMDB: "off"
test:
  script:
    - go test ./...
.template:
  script: go get -insecure x
"""
    got = sorted(found(tmp_path, {".gitlab-ci.yml": text}))
    assert got == [("GM001", ".gitlab-ci.yml", 12), ("GM015", ".gitlab-ci.yml", 4)], got


def test_jenkins_stage_environment_stays_in_its_stage(tmp_path: Path) -> None:
    text = """\
pipeline {
  agent any
  stages {
    stage('a') {
      environment { GOPROXY = 'https://goproxy.corp.example,direct' }
      steps { sh 'go build ./...' }
    }
    stage('b') {
      environment { GOPRIVATE = "corp.example" }
      steps {
        withEnv(['GOFLAGS=-mod=mod']) {
          sh "go test ./..."
        }
      }
    }
  }
}
"""
    got = found(tmp_path, {"Jenkinsfile": text})
    assert ("GM011", "Jenkinsfile", 9) not in got, "GOPROXY of stage a does not reach stage b"
    assert ("GM015", "Jenkinsfile", 11) in got


# --------------------------------------------------------------------------- Kubernetes


def test_envfrom_configmaps_lists_and_init_containers(tmp_path: Path) -> None:
    manifests = """\
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: go}
    data:
      GOPROXY: https://goproxy.corp.example,direct
  - apiVersion: batch/v1
    kind: Job
    metadata: {name: warm}
    spec:
      activeDeadlineSeconds: 600
      template:
        spec:
          initContainers:
            - name: fetch
              image: registry.corp.example/tools:1
              command: [go, mod, download]
              envFrom:
                - configMapRef: {name: go}
              env:
                - {name: HTTPS_PROXY, value: "http://egress:3128"}
"""
    assert ("GM018", "k8s.yaml", 23) in found(tmp_path, {"k8s.yaml": manifests})


def test_multi_document_manifests_and_unrelated_yaml(tmp_path: Path) -> None:
    text = (
        "kind: Pod\nspec:\n  containers:\n    - image: golang:1.23\n      env:\n"
        "        - {name: GOFLAGS, value: '-mod readonly'}\n---\n"
        "kind: Service\nspec: {}\n---\n"
    )
    assert found(tmp_path, {"pod.yaml": text, "other.yaml": "a: [1, 2]\n"}) == [
        ("GM016", "pod.yaml", 6)
    ]


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("Dockerfile", "Dockerfile"),
        ("svc/Dockerfile.prod", "Dockerfile"),
        ("build/tools.Dockerfile", "Dockerfile"),
        ("Containerfile", "Dockerfile"),
        ("Dockerfile.dockerignore", ".dockerignore"),
        (".github/workflows/ci.yaml", "GitHub Actions workflow"),
        ("ci/deploy.gitlab-ci.yml", "GitLab CI file"),
        (".gitlab/ci/build.yml", "GitLab CI file"),
        ("Jenkinsfile", "Jenkinsfile"),
        ("deploy/app.yaml", "YAML"),
        ("scripts/build.sh", "shell script"),
        (".envrc", "env file"),
        ("sub/go.mod", "go.mod"),
        ("Makefile", "Makefile"),
        ("build/common.mk", "Makefile"),
        ("charts/app/templates/deployment.yaml", "Helm template"),
        ("docker-bake.hcl", "build file"),
    ],
)
def test_classification(path: str, kind: str) -> None:
    found_kind = classify(path)
    assert found_kind is not None and found_kind.value == kind, (path, found_kind)


@pytest.mark.parametrize("path", ["main.go", "README.md", "Makefile.txt", "go.work"])
def test_files_doctor_does_not_read(path: str) -> None:
    assert classify(path) is None
