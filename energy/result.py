"""From a window's joules to the cell record's energy fields.

One place decides what the numbers mean, so the meter and the after-the-fact CSV alignment
agree:

* ``energy_gross_j`` = joules in the window / calls in the window;
* ``energy_j`` = (joules - idle watts x window seconds) / calls: the energy the inference added
  over the model-loaded idle baseline; ``None`` without a baseline;
* ``energy_per_audio_s_j`` = ``energy_j`` / audio seconds per call (batch x duration);
* ``power_w_mean`` = joules / window seconds.

Nothing is ever reported as 0 for lack of a measurement: every unmeasured field is ``None`` and
``energy_reason`` says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FIELDS = (
    "energy_j",
    "energy_gross_j",
    "energy_per_audio_s_j",
    "power_w_mean",
    "idle_power_w",
    "energy_source",
    "energy_domain",
    "energy_window_s",
    "energy_reason",
)

NO_IDLE = "no idle baseline (measure_idle was not run or failed): only gross energy is reported"


def empty_fields(reason: str | None, source: str | None = None, domain: str | None = None) -> dict[str, Any]:
    """All energy fields ``None``, with the reason (and the sensor, when there was one)."""
    out: dict[str, Any] = {name: None for name in FIELDS}
    out.update(energy_reason=reason, energy_source=source, energy_domain=domain)
    return out


@dataclass
class WindowEnergy:
    """What one domain measured over one window."""

    domain: str
    source: str
    joules: float | None  # total over the window; None = unmeasured
    window_s: float
    calls: int
    estimated: bool = False
    reason: str | None = None  # why unmeasured, or a caveat
    start_unix: float | None = None
    end_unix: float | None = None

    def fields(self, audio_s_per_call: float | None, idle_power_w: float | None) -> dict[str, Any]:
        notes = [self.reason] if self.reason else []
        if self.estimated:
            notes.insert(0, "estimated, not measured (ENERGY=estimate)")
        if self.joules is None:
            out = empty_fields("; ".join(notes) or "not measured", self.source, self.domain)
            out["energy_window_s"] = self.window_s or None
            out["idle_power_w"] = idle_power_w
            return out
        if self.window_s <= 0 or self.calls <= 0:
            return empty_fields("empty window", self.source, self.domain)
        gross = self.joules / self.calls
        net = per_audio = None
        if idle_power_w is None:
            notes.append(NO_IDLE)
        else:
            net = (self.joules - idle_power_w * self.window_s) / self.calls
            if audio_s_per_call:
                per_audio = net / audio_s_per_call
            if net < 0:
                notes.append(
                    "net energy is negative: the load added less than the noise of the idle baseline; "
                    "use a longer window (min_window_s) on a quieter machine"
                )
        return {
            "energy_j": net,
            "energy_gross_j": gross,
            "energy_per_audio_s_j": per_audio,
            "power_w_mean": self.joules / self.window_s,
            "idle_power_w": idle_power_w,
            "energy_source": self.source,
            "energy_domain": self.domain,
            "energy_window_s": self.window_s,
            "energy_reason": "; ".join(notes) or None,
        }
