#!/bin/sh
set -e
rm -rf "$(go env GOMODCACHE)"
