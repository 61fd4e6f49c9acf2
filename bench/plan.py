"""The plan's cells, typed: what ``Settings.plan()`` returns and the scheduler, the job builder and
resume read.

A cell is one runtime configuration (:class:`RuntimeConfig`: the worker that measures it) and one
input shape (:class:`bench.job.CellShape`).  Frozen, so a cell can be a dict key or a set member,
and a misspelt field fails where it is read instead of as a ``KeyError`` in the middle of a run.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.job import CellShape


@dataclass(frozen=True)
class RuntimeConfig:
    """One worker process: a model under one runtime, provider, variant and thread count."""

    model: str
    runtime: str
    provider: str
    variant: str
    threads: int


@dataclass(frozen=True)
class PlannedCell:
    """One cell of the plan, with the fields of its identity in a run (``runstore.records.cell_key``
    reads them, so a planned cell and its stored record have the same key once the record exists)."""

    model: str
    runtime: str
    provider: str
    variant: str
    threads: int
    batch_size: int
    duration_s: float

    @property
    def config(self) -> RuntimeConfig:
        """The worker that measures this cell."""
        return RuntimeConfig(self.model, self.runtime, self.provider, self.variant, self.threads)

    @property
    def shape(self) -> CellShape:
        """The input this cell measures."""
        return CellShape(self.batch_size, self.duration_s)

    @property
    def comparison(self) -> tuple[str, str, int]:
        """The cells measured against each other (every runtime of one model, variant and threads)."""
        return (self.model, self.variant, self.threads)
