#!/bin/sh
set -e
go get -insecure git.corp.example.com/tools/gen@v1.2.0
