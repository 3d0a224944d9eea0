"""One /metrics page for all the workers of ``--workers N``.

Each worker counts in its own memory, and the kernel hands a scrape to any
one of them, so every worker publishes its registry once a second to a
folder the master made for them (``<index>.json``, replaced atomically, no
fsync: it lives only as long as the server). The worker that answers a
scrape renders its own live series and every sibling's last snapshot, each
series labelled ``worker="<index>"``: counters stay monotonic per worker, so
``sum(rate(...))`` is the server's total, and gauges keep their meaning per
process (``min(modgate_store_writable)``, ``sum(process_resident_memory_bytes)``).
A sibling's figures are at most a second and a bit old.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from modgate.metrics import Labels, Metrics, Snapshot

WORKER_LABEL = "worker"
PUBLISH_INTERVAL = 1.0
SUFFIX = ".json"


class WorkerMetrics:
    def __init__(self, folder: Path, index: int) -> None:
        self.folder = folder
        self.index = index
        self.labels: Labels = ((WORKER_LABEL, str(index)),)
        self._path = folder / f"{index}{SUFFIX}"
        self._temp = folder / f".{index}{SUFFIX}.{os.getpid()}"

    def publish(self, snapshot: Snapshot) -> None:
        """Write this worker's snapshot (call it off the event loop)."""
        self._temp.write_text(json.dumps(snapshot, separators=(",", ":")), encoding="utf-8")
        self._temp.replace(self._path)

    def peers(self) -> list[tuple[Labels, Metrics]]:
        """The other workers' last snapshots; a missing or torn one is left out."""
        out: list[tuple[Labels, Metrics]] = []
        try:
            entries = sorted(self.folder.iterdir())
        except OSError:
            return out
        for entry in entries:
            stem = entry.name.removesuffix(SUFFIX)
            if not entry.name.endswith(SUFFIX) or not stem.isdigit() or int(stem) == self.index:
                continue
            try:
                registry = Metrics.from_snapshot(json.loads(entry.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError, TypeError):
                continue
            out.append((((WORKER_LABEL, stem),), registry))
        return out
