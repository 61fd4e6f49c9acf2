"""The hardware fingerprint from /proc/cpuinfo and sysfs samples of the boards the project targets.

Samples: ``tests/fixtures/cpuinfo/`` (see its README for where each comes from).  Two EPYC VMs that
print the same ``model name`` must get different fingerprints when one has AVX-512 and one has not.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from host import environment as env
from runstore.identity import differences, fingerprint_hash, hardware_fingerprint, hardware_label, identity

SAMPLES = Path(__file__).parent / "fixtures" / "cpuinfo"


def tree(tmp_path: Path, sample: str, caches: dict[str, tuple[str, str]] | None = None,
         governor: str | None = None) -> Path:
    """A fake root with the sample as /proc/cpuinfo; caches: index -> (level+type, size)."""
    (tmp_path / "proc").mkdir(parents=True, exist_ok=True)
    (tmp_path / "proc" / "cpuinfo").write_text((SAMPLES / sample).read_text())
    for index, (name, size) in (caches or {}).items():
        base = tmp_path / f"sys/devices/system/cpu/cpu0/cache/{index}"
        base.mkdir(parents=True)
        (base / "level").write_text(name[1] + "\n")
        (base / "type").write_text({"d": "Data", "i": "Instruction"}.get(name[2:], "Unified") + "\n")
        (base / "size").write_text(size + "\n")
    if governor:
        n = (SAMPLES / sample).read_text().count("processor\t:")
        (tmp_path / "sys/devices/system/cpu").mkdir(parents=True, exist_ok=True)
        (tmp_path / "sys/devices/system/cpu/online").write_text(f"0-{n - 1}\n")
        for cpu in range(n):
            d = tmp_path / f"sys/devices/system/cpu/cpu{cpu}/cpufreq"
            d.mkdir(parents=True)
            (d / "scaling_governor").write_text(governor + "\n")
    return tmp_path


ZEN_CACHES = {"index0": ("L1d", "32K"), "index1": ("L1i", "32K"), "index2": ("L2", "512K"),
              "index3": ("L3", "32768K")}


def test_amd_epyc_without_avx512(tmp_path):
    cpu = env.read_cpu(tree(tmp_path, "amd-epyc-zen3-vm.txt", ZEN_CACHES))
    assert (cpu["vendor"], cpu["family"], cpu["model_number"], cpu["stepping"]) == ("AuthenticAMD", 25, 1, 1)
    assert cpu["kernel_flags"] == ["sse4_2", "avx", "f16c", "fma", "avx2"]
    assert cpu["caches"] == {"L1d": 32768, "L1i": 32768, "L2": 524288, "L3": 32 * 1024 ** 2}
    assert cpu["logical_cores"] == 2 and cpu["model"] == "AMD EPYC"


def test_amd_epyc_with_avx512_is_another_machine_under_the_same_name(tmp_path):
    zen3 = env.read_cpu(tree(tmp_path / "a", "amd-epyc-zen3-vm.txt"))
    zen4 = env.read_cpu(tree(tmp_path / "b", "amd-epyc-zen4-vm.txt"))
    assert zen4["model_number"] == 17
    assert zen4["kernel_flags"] == ["sse4_2", "avx", "f16c", "fma", "avx2", "avx512f", "avx512dq", "avx512cd",
                                    "avx512bw", "avx512vl", "avx512ifma", "avx512vbmi", "avx512_vbmi2",
                                    "avx512_vnni", "avx512_bf16"]
    # no sysfs cache folder: the cpuinfo line stands in, named as what it is
    assert zen3["caches"] == {"cpuinfo": 512 * 1024} and zen4["caches"] == {"cpuinfo": 1024 * 1024}
    a, b = identity("vm", {"cpu": zen3}), identity("vm", {"cpu": zen4})
    assert zen3["model"] == zen4["model"] and fingerprint_hash(a) != fingerprint_hash(b)
    assert differences(a, b) == [
        "CPU model 1 → 17",
        "CPU flags: avx512f, avx512dq, avx512cd, avx512bw, avx512vl, avx512ifma, avx512vbmi, avx512_vbmi2, "
        "avx512_vnni, avx512_bf16 new",
        "caches cpuinfo=524288 → cpuinfo=1048576"]


def test_amx_is_a_kernel_flag():
    block = {"processor": "0", "vendor_id": "GenuineIntel", "cpu family": "6", "model": "143", "stepping": "8",
             "flags": "fpu avx2 fma avx512f avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8"}
    ident = env.cpu_identity([block])
    assert ident["kernel_flags"] == ["fma", "avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile",
                                     "amx_bf16", "amx_int8"]
    assert (ident["family"], ident["model_number"], ident["stepping"]) == (6, 143, 8)


def test_raspberry_pi_4_cortex_a72(tmp_path):
    cpu = env.read_cpu(tree(tmp_path, "rpi4-cortex-a72.txt", governor="ondemand"))
    assert cpu["vendor"] == "ARM" and cpu["arm_architecture"] == "8"
    assert cpu["arm_cores"] == [{"implementer": "0x41", "part": "0xd08", "name": "Cortex-A72",
                                 "variant": "0x0", "revision": 3}]
    assert cpu["kernel_flags"] == ["asimd"]  # NEON only: no fp16 arithmetic, no dotprod
    assert cpu["caches"] is None and cpu["governor"] == "ondemand" and cpu["logical_cores"] == 4
    assert "family" not in cpu


def test_raspberry_pi_5_cortex_a76(tmp_path):
    caches = {"index0": ("L1d", "64K"), "index1": ("L1i", "64K"), "index2": ("L2", "512K"),
              "index3": ("L3", "2048K")}
    cpu = env.read_cpu(tree(tmp_path, "rpi5-cortex-a76.txt", caches, governor="ondemand"))
    assert [(c["name"], c["variant"], c["revision"]) for c in cpu["arm_cores"]] == [("Cortex-A76", "0x4", 1)]
    assert cpu["kernel_flags"] == ["asimd", "fphp", "asimdhp", "asimddp"]  # dotprod, fp16; no i8mm, no SVE
    assert cpu["caches"] == {"L1d": 65536, "L1i": 65536, "L2": 524288, "L3": 2 * 1024 ** 2}
    label = hardware_label(hardware_fingerprint({"cpu": cpu}))
    assert label.startswith("ARM Cortex-A76 r4p1, 4 logical cores, flags asimd,fphp,asimdhp,asimddp")
    assert "governor ondemand" in label


def test_jetson_orin_cortex_a78ae(tmp_path):
    cpu = env.read_cpu(tree(tmp_path, "jetson-agx-orin-a78ae.txt"))
    assert cpu["logical_cores"] == 12 and cpu["vendor"] == "ARM"
    assert [(c["name"], c["part"], c["revision"]) for c in cpu["arm_cores"]] == [("Cortex-A78AE", "0xd42", 1)]
    assert cpu["kernel_flags"] == ["asimd", "fphp", "asimdhp", "asimddp"]
    assert "i8mm" not in cpu["kernel_flags"] and "sve" not in cpu["kernel_flags"]


@pytest.mark.parametrize("features, expected", [
    ("fp asimd asimddp sve sve2 i8mm bf16 svei8mm svebf16", ["asimd", "asimddp", "i8mm", "bf16", "sve", "sve2",
                                                             "svei8mm", "svebf16"]),
    ("half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt", ["neon", "vfpv4"]),  # 32-bit kernel
])
def test_arm_kernel_flags(features, expected):
    block = {"processor": "0", "Features": features, "CPU implementer": "0x41", "CPU part": "0xd40"}
    assert env.cpu_identity([block])["kernel_flags"] == expected


def test_big_little_flags_are_those_every_core_has():
    little = {"processor": "0", "Features": "fp asimd asimddp", "CPU implementer": "0x41", "CPU part": "0xd05"}
    big = {"processor": "4", "Features": "fp asimd asimddp i8mm", "CPU implementer": "0x41", "CPU part": "0xd0b"}
    ident = env.cpu_identity([little, big])
    assert ident["kernel_flags"] == ["asimd", "asimddp"]
    assert [c["name"] for c in ident["arm_cores"]] == ["Cortex-A55", "Cortex-A76"]


def test_the_governor_is_part_of_the_hardware_fingerprint(tmp_path):
    a = env.read_cpu(tree(tmp_path / "a", "rpi5-cortex-a76.txt", governor="ondemand"))
    b = env.read_cpu(tree(tmp_path / "b", "rpi5-cortex-a76.txt", governor="performance"))
    assert differences(identity("pi", {"cpu": a}), identity("pi", {"cpu": b})) == ["governor ondemand → performance"]
