#!/bin/sh
export GO111MODULE=off
go build ./...
export GO111MODULE=on
