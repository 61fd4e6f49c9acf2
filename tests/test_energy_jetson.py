"""Jetson INA3221 rails on fake trees (Nano on JetPack 4, Orin NX and AGX Orin on JetPack 5+,
AGX Thor with its carrier INA238), and the tegrastats fallback on lines recorded on devices."""

from __future__ import annotations

import queue
import time
from pathlib import Path

import pytest

from energy import SysRoot, open_meter
from energy.errors import SensorError
from energy.fakes import FakeClock, FakeRunner
from energy.hwmon import probe as hwmon_probe
from energy.jetson import probe
from energy.jetson_domains import combine, domains_for
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
# AGX Orin on JetPack 7.2 (L4T R39.2): three values per rail, lower-case temperatures with a max.
# Device output quoted in jetson-stats' parser test (rbonghi/jetson_stats, jtop/tests/test_06_tegra_parse.py).
AGX_ORIN_JP7_LINE = (
    "07-25-2026 09:08:28 RAM 20642/62817MB (lfb 1x2MB) CPU [23%@2201,10%@2201,4%@2201,14%@2201] "
    "EMC_FREQ 3%@3199 GR3D_FREQ 12%@[1300,1300] NVENC0 off NVDEC0 off VIC off APE 174 "
    "cpu@52.968C/52.968C soc2@48.406C/48.406C soc0@49.531C/49.531C gpu@47.625C/47.625C "
    "VDD_GPU_SOC 5139mW/5139mW/5139mW VDD_CPU_CV 3268mW/3268mW/3268mW VIN_SYS_5V0 5500mW/5500mW/5500mW"
)
# Jetson AGX Thor (JetPack 7), quoted in issue 16: idle, under load (current/average/max), and idle
# with the small negative VDD_GPU reading of a sensor offset.  VIN is the board input (carrier INA238).
THOR_IDLE_LINE = (
    "04-21-2026 15:50:52 RAM 105265/125772MB (lfb 34x4MB) CPU [0%@972,0%@972] EMC_FREQ 0%@2750 "
    "GR3D_FREQ @[314,314,314] NVENC0_FREQ @314 APE 300 cpu@37.343C tj@38.875C soc012@37.468C gpu@38.875C "
    "soc345@37.406C VDD_GPU 1962mW/1962mW VDD_CPU_SOC_MSS 5887mW/5887mW VIN_SYS_5V0 5635mW/5635mW VIN 19780mW/19780mW"
)
THOR_LOAD_LINE = (
    "08-08-2026 21:00:39 RAM 8353/125749MB (lfb 31x4MB) CPU [90%@2601,75%@2601,off,7%@2601] EMC_FREQ 34%@4266 "
    "GR3D_FREQ 87%@[1574,1574,1574] NVENC0_FREQ @1691 VIC off cpu@58.25C/61.75C tj@66.625C/66.625C "
    "gpu@56.937C/66.625C VDD_GPU 37939mW/8660mW/37939mW VDD_CPU_SOC_MSS 30059mW/12281mW/30059mW "
    "VIN_SYS_5V0 15486mW/7424mW/15486mW VIN 124486mW/36487mW/124486mW"
)
THOR_NEGATIVE_LINE = (
    "05-14-2026 21:36:35 RAM 26063/125772MB (lfb 35x4MB) CPU [2%@972] VDD_GPU -392mW/-392mW "
    "VDD_CPU_SOC_MSS 3924mW/3835mW VIN_SYS_5V0 5064mW/5055mW VIN 15004mW/15096mW"
)


def thor_line(vin_mw: int, gpu_mw: int = 1962) -> str:
    """A Thor line with chosen VIN and VDD_GPU readings (the other rails as in the idle line)."""
    return THOR_IDLE_LINE.replace("VIN 19780mW/19780mW", f"VIN {vin_mw}mW/{vin_mw}mW").replace(
        "VDD_GPU 1962mW/1962mW", f"VDD_GPU {gpu_mw}mW/{gpu_mw}mW"
    )


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
    assert parse_line(AGX_ORIN_JP7_LINE) == {"VDD_GPU_SOC": 5.139, "VDD_CPU_CV": 3.268, "VIN_SYS_5V0": 5.5}
    assert parse_line("RAM 2126/3964MB SWAP 0/1982MB IRAM 0/252kB") == {}


def test_thor_vin_is_the_board_input_and_never_added_to_the_module_rails():
    idle, load = parse_line(THOR_IDLE_LINE), parse_line(THOR_LOAD_LINE)
    assert idle == {"VDD_GPU": 1.962, "VDD_CPU_SOC_MSS": 5.887, "VIN_SYS_5V0": 5.635, "VIN": 19.78}
    assert load["VIN"] == 124.486
    domains = domains_for(list(idle))
    assert [(d.name, d.within) for d in domains] == [
        ("board-input", None),
        ("module-rails-sum", "board-input"),
        ("rail:VDD_GPU", "module-rails-sum"),
        ("rail:VDD_CPU_SOC_MSS", "module-rails-sum"),
        ("rail:VIN_SYS_5V0", "module-rails-sum"),
    ]
    assert "VIN" in domains[0].description and "carrier" in domains[0].description
    assert "VDD_GPU+VDD_CPU_SOC_MSS+VIN_SYS_5V0" in domains[1].description
    # before: VIN was summed with the rails it contains: 33.264 W idle, 208.0 W under load
    assert combine(idle)["board-input"] == 19.78 and combine(load)["board-input"] == 124.486
    assert combine(idle)["module-rails-sum"] == pytest.approx(1.962 + 5.887 + 5.635, abs=1e-12)
    assert combine(load)["module-rails-sum"] == pytest.approx(37.939 + 30.059 + 15.486, abs=1e-12)


def test_a_negative_rail_is_read_signed_and_kept_in_the_sum():
    rails = parse_line(THOR_NEGATIVE_LINE)
    assert rails == {"VDD_GPU": -0.392, "VDD_CPU_SOC_MSS": 3.924, "VIN_SYS_5V0": 5.064, "VIN": 15.004}
    watts = combine(rails)
    assert watts["board-input"] == 15.004
    assert watts["rail:VDD_GPU"] == -0.392
    assert watts["module-rails-sum"] == pytest.approx(-0.392 + 3.924 + 5.064, abs=1e-12)  # not clamped at 0


class QueueLines:
    """A tegrastats stream the test feeds line by line.

    :meth:`feed` returns once the reader has finished with the line: the reader asks for the next
    line only after it has taken the previous one, so no test waits on a clock."""

    def __init__(self, first: str) -> None:
        self.q: queue.Queue = queue.Queue()
        self.taken: queue.Queue = queue.Queue()
        self.q.put(first)

    def __iter__(self):
        while (line := self.q.get()) is not None:
            yield line
            self.taken.put(line)

    def feed(self, line: str) -> None:
        self.q.put(line)
        while self.taken.get(timeout=30) is not line:
            pass


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


def open_tegrastats(tmp_path: Path, first: str, clock=None):
    write(tmp_path / "etc/nv_tegra_release", "# R38 (release), REVISION: 2.0")
    lines = QueueLines(first)
    meter = open_meter("jetson", root=str(tmp_path), env={}, runner=FakeRunner(streams={"tegrastats --interval 100": lines}), clock=clock)
    return meter, lines


def test_a_first_line_with_a_negative_rail_does_not_freeze_the_reading(tmp_path):
    meter, lines = open_tegrastats(tmp_path, THOR_NEGATIVE_LINE)
    sensor = meter.sensors[0]
    assert meter.domain == "board-input" and sensor.read()["board-input"] == 15.004
    assert sensor.read()["rail:VDD_GPU"] == -0.392
    for vin, gpu in [(24000, -120), (60000, 20500), (60500, 21000)]:
        lines.feed(thor_line(vin, gpu))
        watts = sensor.read()
        assert watts["board-input"] == vin / 1e3 and watts["rail:VDD_GPU"] == gpu / 1e3  # follows every line
    assert sensor.unreadable_lines == 0
    lines.feed(THOR_LOAD_LINE)
    assert sensor.read()["board-input"] == 124.486
    lines.q.put(None)
    meter.close()


def test_unreadable_lines_are_counted_and_too_many_end_the_reading_with_a_reason(tmp_path):
    meter, lines = open_tegrastats(tmp_path, THOR_IDLE_LINE)
    sensor = meter.sensors[0]
    sensor.max_unreadable = 3
    no_vin = thor_line(30000).replace("VIN 30000mW/30000mW", "")
    for k in range(3):  # up to the limit, the last good value stands (at most 3 lines old)
        lines.feed(no_vin)
        assert sensor.unreadable_lines == k + 1 and sensor.read()["board-input"] == 19.78
    lines.feed("RAM 26063/125772MB (lfb 35x4MB) CPU [2%@972]")  # no rails at all: the 4th in a row
    with pytest.raises(SensorError, match=r"4 lines in a row could not be read \(missing VDD_GPU, .*, VIN; the last one had no rails\)"):
        sensor.read()
    lines.feed(thor_line(41000))  # a good line makes it readable again; the count stays
    assert sensor.read()["board-input"] == 41.0 and sensor.unreadable_lines == 4
    lines.q.put(None)
    meter.close()


def test_a_window_whose_lines_cannot_be_read_is_null_with_the_reason_not_a_stale_number(tmp_path):
    clock = FakeClock()
    meter, lines = open_tegrastats(tmp_path, THOR_NEGATIVE_LINE, clock=clock)
    sensor = meter.sensors[0]
    lines.feed(thor_line(60000))

    def steady():
        lines.feed(thor_line(60000))
        clock.advance(0.1)

    fields = meter.measure(steady, audio_s_per_call=1.0, min_window_s=1.0)
    assert fields["energy_domain"] == "board-input" and fields["energy_window_s"] == pytest.approx(2.0)
    assert fields["power_w_mean"] == pytest.approx(60.0, abs=1e-9)  # the lines, not the first line's 15.004 W
    assert fields["energy_gross_j"] == pytest.approx(6.0, abs=1e-9)  # 60 W x 0.1 s per call

    def rails_gone():
        lines.feed("RAM 26063/125772MB (lfb 35x4MB) CPU [2%@972] VDD_GPU 900mW/900mW")
        clock.advance(0.1)

    fields = meter.measure(rails_gone, audio_s_per_call=1.0, min_window_s=1.0)
    assert fields["energy_gross_j"] is None and fields["power_w_mean"] is None
    assert "during the window" in fields["energy_reason"] and "could not be read" in fields["energy_reason"]
    assert sensor.unreadable_lines > sensor.max_unreadable
    lines.q.put(None)
    meter.close()


def thor_tree(root: Path, vin_label: str | None = None) -> Path:
    """AGX Thor: the module INA3221 rails of tegrastats, and the carrier's INA238 with no label."""
    hwmon_chip(root, "2-0040", "hwmon2", [("VDD_GPU", 5000, -78), ("VDD_CPU_SOC_MSS", 5000, 780), ("VIN_SYS_5V0", 5000, 1010)])
    ina238 = root / "sys/bus/i2c/drivers/ina238/2-0044/hwmon/hwmon7"
    write(ina238 / "name", "ina238")
    write(ina238 / "power1_input", 15_004_000)  # uW
    write(ina238 / "in1_input", 19_100)  # bus mV
    write(ina238 / "curr1_input", 786)
    if vin_label:
        write(ina238 / "label", vin_label)
    (root / "sys/class/hwmon").mkdir(parents=True, exist_ok=True)
    (root / "sys/class/hwmon/hwmon7").symlink_to(ina238)  # sysfs links the class to the device
    write(root / "proc/device-tree/compatible", "nvidia,p4071-0000+p3834-0008\0nvidia,p3834-0008\0nvidia,tegra264")
    return root


def test_thor_sysfs_finds_the_carrier_ina238_as_the_board_input(tmp_path):
    found = probe(Context(root=SysRoot(thor_tree(tmp_path))))
    sensor = found.sensor
    assert sensor.source == "jetson INA3221 via hwmon + INA238 (VDD_GPU, VDD_CPU_SOC_MSS, VIN_SYS_5V0, VIN)"
    assert "INA238 (hwmon+ina238): VIN" in found.found
    assert [d.name for d in sensor.domains][:2] == ["board-input", "module-rails-sum"]
    watts = sensor.read()
    assert watts["board-input"] == 15.004  # power1_input, uW
    assert watts["rail:VDD_GPU"] == -0.39  # 5000 mV x -78 mA: a signed current stays signed
    assert watts["module-rails-sum"] == pytest.approx(-0.39 + 3.9 + 5.05, abs=1e-12)
    # auto does not also call the same chip an external meter
    hw = hwmon_probe(Context(root=SysRoot(tmp_path)))
    assert not hw.available and "jetson family reads it as board-input" in hw.reason
    assert hwmon_probe(Context(root=SysRoot(tmp_path)), forced=True).available  # unless asked for


def test_an_ina238_label_names_the_rail_and_off_a_jetson_it_stays_an_external_meter(tmp_path):
    labelled = probe(Context(root=SysRoot(thor_tree(tmp_path / "thor", vin_label="VIN")))).sensor
    assert labelled.read()["board-input"] == 15.004
    other = thor_tree(tmp_path / "carrier", vin_label="VDD_5V_CARRIER").joinpath("sys/bus/i2c/drivers/ina238/2-0044/hwmon/hwmon7")
    (other / "power1_input").unlink()  # bus mV x mA when there is no power file
    sensor = probe(Context(root=SysRoot(tmp_path / "carrier"))).sensor
    assert [(d.name, d.within) for d in sensor.domains][::4] == [("module-rails-sum", None), ("carrier:VDD_5V_CARRIER", None)]
    watts = sensor.read()
    assert watts["carrier:VDD_5V_CARRIER"] == pytest.approx(19.1 * 0.786, abs=1e-12)  # bus mV x mA
    assert watts["module-rails-sum"] == pytest.approx(-0.39 + 3.9 + 5.05, abs=1e-12)  # a carrier rail is no module rail
    # an INA238 on a network switch (address, hwmon index and power1_input as posted in
    # sonic-net/sonic-linux-kernel pull request 585): not a Jetson, so an ordinary external meter
    server = tmp_path / "server"
    ina238 = server / "sys/bus/i2c/drivers/ina238/57-0040/hwmon/hwmon30"
    write(ina238 / "name", "ina238")
    write(ina238 / "power1_input", 19_555_200)
    (server / "sys/class/hwmon").mkdir(parents=True)
    (server / "sys/class/hwmon/hwmon30").symlink_to(ina238)
    assert "not a Jetson" in probe(Context(root=SysRoot(server), runner=FakeRunner())).reason
    assert hwmon_probe(Context(root=SysRoot(server))).sensor.read() == {"external:ina238/power1": 19.5552}


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
