#!/bin/sh
version="$(git describe --tags)"
modules=$(go mod download -insecure -json)
echo "$version $modules"
