#!/bin/sh
set -e
go clean -modcache
