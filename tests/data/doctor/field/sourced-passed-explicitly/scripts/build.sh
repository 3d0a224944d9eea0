#!/usr/bin/env bash
source ./scripts/build_lib.sh
build
