"""Exceptions of the energy package.

Two kinds of trouble are kept apart on purpose:

* a *configuration* mistake (an unknown ``ENERGY=`` value, a missing ``CPU_WATTS``) is the
  user's to fix before anything runs, so it raises :class:`EnergyConfigError` (a
  ``ValueError``; the command line turns it into exit code 2);
* a *missing or unreadable sensor* is a fact about the machine, not an error: readers report
  it as "unavailable, because ..., fix: ..." and the harness stores ``null`` plus that reason.
  :class:`SensorError` is only raised by a reader whose sensor vanished or failed mid-run; the
  meter catches it and turns it into a reason.
"""

from __future__ import annotations


class EnergyConfigError(ValueError):
    """A bad energy setting: the message names the bad value and the valid choices."""


class SensorError(RuntimeError):
    """A sensor that was readable failed while being read (its message says what and why)."""
