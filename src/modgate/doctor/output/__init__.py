"""Findings written out: :mod:`.render` (text for people, JSON for programs) and :mod:`.sarif`."""
