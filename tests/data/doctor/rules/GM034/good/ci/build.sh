#!/bin/sh
set -e
. ci/go.env
go build ./...
