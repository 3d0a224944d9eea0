"""Test helpers: a hermetic go environment, module builders, and local servers.

Everything here talks to 127.0.0.1 only and keeps its state under the test's
``tmp_path``; nothing reads the environment at import time.
"""
