"""Reading what doctor meets the way its own tool reads it, with line numbers, and no rules.

- :mod:`.dockerparse`: Dockerfile syntax (instructions, flags, heredocs).
- :mod:`.shellparse`: enough POSIX shell to find go commands and assignments.
- :mod:`.yamlnodes`: YAML documents whose values keep their line numbers.
- :mod:`.helm`: Helm templates read without rendering them.
- :mod:`.goflags`: GOFLAGS as the go command splits and checks it.
- :mod:`.goimage`: image references, the official golang images, Go version order.
- :mod:`.noproxy`: which hosts Go's HTTP client sends through HTTP(S)_PROXY.
"""
