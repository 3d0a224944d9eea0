"""Finds what will break go mod download, and explains failed build logs."""
