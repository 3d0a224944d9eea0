"""The analyzers: one module per kind of file, each reporting rules of the catalog.

:mod:`.context` is what they share about the repository being scanned, and
:mod:`.goenv` checks Go settings (GOPROXY, GOPRIVATE, GOSUMDB, GOFLAGS...)
wherever a file sets them. Dockerfiles: :mod:`.dockerfile` (the walk and the
single-instruction rules), :mod:`.dockerstage` (a stage's state),
:mod:`.dockergo` (the go commands of a stage), :mod:`.dockerignore`. CI and
scripts: :mod:`.ci` (GitHub Actions), :mod:`.gitlab`, :mod:`.jenkins`,
:mod:`.makefile`, :mod:`.shell` (scripts, and the scripts inside the others),
:mod:`.buildimage` (golang images named outside Dockerfiles). Also
:mod:`.kube` (Kubernetes manifests and Helm templates), :mod:`.gomod` and
:mod:`.netrc`.
"""
