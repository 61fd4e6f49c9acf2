"""Energy sensors and the energy harness of wavebench.

Joules per inference from real sensors -- Linux RAPL, NVIDIA NVML, Jetson INA3221 rails (or
tegrastats), the Raspberry Pi 5 PMIC, external meters (hwmon or a CSV log) -- idle-subtracted,
per domain, and ``None`` with a reason whenever something cannot be measured.  An estimate from
CPU time exists only on request and is labelled "estimated".

Typical use inside a benchmark worker::

    from energy import open_meter
    meter = open_meter("auto", preferred=profile_energy_list)
    idle_w = meter.measure_idle(5.0)             # model loaded, nothing running
    fields = meter.measure(run_once, audio_s_per_call=batch * duration, idle_power_w=idle_w,
                           sync=torch.cuda.synchronize if cuda else None)
    meter.close()

``python -m energy`` lists what this machine has and how to enable what it lacks.
"""

from host.sysfs import ROOT_ENV, SysRoot

from .discover import FAMILIES, open_meter, open_meter_or_reason, parse_spec, probe_all
from .errors import EnergyConfigError, SensorError
from .meter import EnergyMeter
from .result import FIELDS, empty_fields
from .sensor import Context, Domain, Probe, Sensor

__all__ = [
    "FAMILIES",
    "FIELDS",
    "ROOT_ENV",
    "Context",
    "Domain",
    "EnergyConfigError",
    "EnergyMeter",
    "Probe",
    "Sensor",
    "SensorError",
    "SysRoot",
    "empty_fields",
    "open_meter_or_reason",
    "open_meter",
    "parse_spec",
    "probe_all",
]
