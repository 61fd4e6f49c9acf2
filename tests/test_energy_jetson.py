"""Jetson INA3221 rails on fake trees (Nano on JetPack 4, Orin NX and AGX Orin on JetPack 5+),
and the tegrastats fallback on recorded lines."""

from __future__ import annotations

import queue
import time
from pathlib import Path

import pytest

from energy import SysRoot, open_meter
from energy.fakes import FakeRunner
from energy.jetson import probe
from energy.sensor import Context
from energy.tegrastats import parse_line

NANO_LINE = (
    "RAM 2126/3964MB (lfb 25x4MB) SWAP 0/1982MB (cached 0MB) IRAM 0/252kB(lfb 252kB) "
    "CPU [12%@1479,5%@1479,9%@1479,4%@1479] EMC_FREQ 3%@1600 GR3D_FREQ 0%@921 APE 25 "
    "PLL@31C CPU@34.5C PMIC@100C GPU@32C AO@40.5C thermal@33.25C POM_5V_IN 2412/2412 POM_5V_GPU 0/0 POM_5V_CPU 405/405"
)
XAVIER_NX_LINE = (
    "RAM 3422/7772MB (lfb 1x4MB) SWAP 0/3886MB (cached 0MB) CPU [3%@1190,2%@1190] EMC_FREQ 0% "
    "GR3D_FREQ 0% AO@38.5C GPU@38C VDD_IN 5067/5067 VDD_CPU_GPU_CV 1236/1236 VDD_SOC 1236/1236"
)
AGX_ORIN_LINE = (
    "11-04-2024 10:21:33 RAM 4571/62841MB (lfb 13x4MB) SWAP 0/31421MB (cached 0MB) CPU [1%@729,0%@729] "
    "EMC_FREQ 0%@2133 GR3D_FREQ 0%@[305,305] VIC_FREQ 729 APE 174 CV0@-256C CPU@46.656C SOC2@43.218C "
    "VDD_GPU_SOC 2386mW/2386mW VDD_CPU_CV 397mW/397mW VIN_SYS_5V0 2216mW/2216mW NC 0mW/0mW "
    "VDDQ_VDD2_1V8AO 303mW/303mW NC 0mW/0mW"
)
THREE_VALUE_LINE = "RAM 1/2MB GPU 120/110/300 CPU 311mW/300mW/400mW SOC 933/933"


def write(path: Path, text) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{text}\n")


def nano_jp4(root: Path) -> Path:
    dev = root / "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    for i, (name, mw) in enumerate([("POM_5V_IN", 2412), ("POM_5V_GPU", 0), ("POM_5V_CPU", 405)]):
        write(dev / f"rail_name_{i}", name)
        write(dev / f"in_power{i}_input", mw)
        write(dev / f"in_current{i}_input", mw // 5)
    write(root / "etc/nv_tegra_release", "# R32 (release), REVISION: 7.1")
    return root


def hwmon_chip(root: Path, addr: str, hwmon: str, channels: list[tuple[str, int, int]]) -> Path:
    chip = root / f"sys/bus/i2c/drivers/ina3221/{addr}/hwmon/{hwmon}"
    write(chip / "name", "ina3221")
    for k, (label, mv, ma) in enumerate(channels, start=1):
        write(chip / f"in{k}_label", label)
        write(chip / f"in{k}_input", mv)
        write(chip / f"curr{k}_input", ma)
        write(chip / f"in{k + 3}_input", 12)  # shunt voltage channels: no label, not rails
    write(chip / "in7_label", "sum of shunt voltages")
    write(chip / "in7_input", 40)
    return chip


def orin_nx(root: Path) -> Path:
    hwmon_chip(root, "1-0040", "hwmon1", [("VDD_IN", 5000, 1200), ("VDD_CPU_GPU_CV", 5000, 300), ("VDD_SOC", 5000, 250)])
    return root


def agx_orin(root: Path) -> Path:
    hwmon_chip(root, "1-0040", "hwmon3", [("VDD_GPU_SOC", 5000, 480), ("VDD_CPU_CV", 5000, 80), ("VIN_SYS_5V0", 5000, 440)])
    hwmon_chip(root, "1-0041", "hwmon4", [("NC", 0, 0), ("VDDQ_VDD2_1V8AO", 5000, 60), ("NC", 0, 0)])
    return root


def test_nano_jetpack4_iio_uses_the_pom_5v_in_input_rail(tmp_path):
    found = probe(Context(root=SysRoot(nano_jp4(tmp_path))))
    sensor = found.sensor
    assert "via iio" in sensor.source
    assert [d.name for d in sensor.domains] == ["module-input", "rail:POM_5V_GPU", "rail:POM_5V_CPU"]
    assert "POM_5V_IN" in sensor.primary.description and "not the carrier board" in sensor.primary.description
    assert sensor.domains[1].within == "module-input"
    assert sensor.read() == {"module-input": 2.412, "rail:POM_5V_GPU": 0.0, "rail:POM_5V_CPU": 0.405}


def test_orin_nx_hwmon_multiplies_millivolts_by_milliamps(tmp_path):
    sensor = probe(Context(root=SysRoot(orin_nx(tmp_path)))).sensor
    assert "via hwmon" in sensor.source
    assert sensor.primary.name == "module-input" and "VDD_IN" in sensor.primary.description
    assert sensor.read() == {"module-input": 6.0, "rail:VDD_CPU_GPU_CV": 1.5, "rail:VDD_SOC": 1.25}


def test_agx_orin_has_no_input_rail_so_the_domain_is_the_stated_sum_without_nc(tmp_path):
    found = probe(Context(root=SysRoot(agx_orin(tmp_path))))
    sensor = found.sensor
    assert sensor.primary.name == "module-rails-sum"
    assert "no input rail" in sensor.primary.description
    assert "VDD_GPU_SOC+VDD_CPU_CV+VIN_SYS_5V0+VDDQ_VDD2_1V8AO" in sensor.primary.description
    assert not any("NC" in line for line in found.found)
    watts = sensor.read()
    assert watts["module-rails-sum"] == pytest.approx(2.4 + 0.4 + 2.2 + 0.3, abs=1e-12)
    assert watts["rail:VIN_SYS_5V0"] == 2.2 and len(watts) == 5


def test_tegrastats_lines_parse_across_releases():
    assert parse_line(NANO_LINE) == {"POM_5V_IN": 2.412, "POM_5V_GPU": 0.0, "POM_5V_CPU": 0.405}
    assert parse_line(XAVIER_NX_LINE) == {"VDD_IN": 5.067, "VDD_CPU_GPU_CV": 1.236, "VDD_SOC": 1.236}
    assert parse_line(AGX_ORIN_LINE) == {"VDD_GPU_SOC": 2.386, "VDD_CPU_CV": 0.397, "VIN_SYS_5V0": 2.216, "VDDQ_VDD2_1V8AO": 0.303}
    assert parse_line(THREE_VALUE_LINE) == {"GPU": 0.12, "CPU": 0.311, "SOC": 0.933}
    assert parse_line("RAM 2126/3964MB SWAP 0/1982MB IRAM 0/252kB") == {}


class QueueLines:
    """A tegrastats stream the test feeds line by line."""

    def __init__(self, first: str) -> None:
        self.q: queue.Queue = queue.Queue()
        self.q.put(first)

    def __iter__(self):
        while (line := self.q.get()) is not None:
            yield line


def test_a_jetson_without_sysfs_rails_falls_back_to_tegrastats(tmp_path):
    write(tmp_path / "etc/nv_tegra_release", "# R35 (release), REVISION: 4.1")
    lines = QueueLines(XAVIER_NX_LINE)
    runner = FakeRunner(streams={"tegrastats --interval 100": lines})
    meter = open_meter("jetson", root=str(tmp_path), env={}, runner=runner)
    assert meter.available and meter.source.startswith("tegrastats") and meter.domain == "module-input"
    sensor = meter.sensors[0]
    assert sensor.known_period_s == 0.1
    assert sensor.read()["module-input"] == 5.067
    lines.q.put(XAVIER_NX_LINE.replace("VDD_IN 5067/5067", "VDD_IN 7300/6000"))
    deadline = time.monotonic() + 5
    while sensor.read()["module-input"] != 7.3 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert sensor.read()["module-input"] == 7.3  # always the newest line, never a stale buffered one
    lines.q.put(None)  # tegrastats exits
    meter.close()


def test_not_a_jetson(tmp_path):
    found = probe(Context(root=SysRoot(tmp_path), runner=FakeRunner()))
    assert not found.available and "not a Jetson" in found.reason


def test_jetson_without_rails_or_tegrastats_says_both(tmp_path):
    write(tmp_path / "etc/nv_tegra_release", "# R32")
    found = probe(Context(root=SysRoot(tmp_path), runner=FakeRunner()))
    assert not found.available and "no INA3221 rails" in found.reason and "tegrastats not found" in found.reason


def test_cli_on_an_agx_orin_tree_names_the_summed_domain(tmp_path):
    import io

    from energy.cli import main

    out = io.StringIO()
    assert main(["--root", str(agx_orin(tmp_path))], out=out) == 0
    text = out.getvalue()
    assert "[found]   jetson: jetson INA3221 via hwmon" in text
    assert "domain module-rails-sum" in text and "no input rail" in text
    assert "domain rail:VIN_SYS_5V0 (within module-rails-sum)" in text
