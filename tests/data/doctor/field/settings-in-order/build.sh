#!/bin/sh
# an old default kept at the top, undone before any go command runs
export GO111MODULE=off
export GO111MODULE=on
go build ./...
