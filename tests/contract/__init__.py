"""Contract tests: one suite per port, run by every implementation of that port."""
