#!/bin/sh
set -e
GOINSECURE=git.corp.example.com go get git.corp.example.com/tools/gen@v1.2.0
