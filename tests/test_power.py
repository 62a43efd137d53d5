"""Jetson power: tegrastats / jtop parsing and the energy-per-inference arithmetic.

Sources of the formats:
- tegrastats rails are `<rail> X/Y`, X = current and Y = average power in milliwatts (NVIDIA Tegra Linux Driver
  Package Development Guide 32.x, "tegrastats Utility" appendix, e.g. docs.nvidia.com/jetson/archives/l4t-archived/
  l4t-325/.../AppendixTegraStats.html; the same table is quoted in jetson-stats' jtop/core/tegra_parse.py VOLTS).
  JetPack 5/6 print the unit: `VDD_IN 5263mW/5263mW` (the Orin Nano JetPack 6 line below, as published with a
  public tegrastats parser). Nano/TX1/TX2 name the input rail POM_5V_IN, Xavier/Orin VDD_IN.
- jtop's `jetson.power` is {"rail": {name: {"volt", "curr", "warn", "crit", "power", "avg"}}, "tot": {..., "name"}}
  in mV/mA/mW (jetson-stats jtop/core/power.py, PowerService.get_status and total_power).
"""

from __future__ import annotations

import os
import stat
import sys
import time

import pytest

from edgecls.bench import power

ORIN_NANO_JP6 = ("05-05-2025 06:05:39 RAM 2639/7620MB (lfb 9x4MB) SWAP 0/3810MB (cached 0MB) CPU [1%@729,4%@729,8%@729,"
                 "4%@729,5%@729,4%@729] GR3D_FREQ 0% cpu@44.156C soc2@43.781C soc0@44.687C gpu@45.968C tj@45.968C "
                 "soc1@45.312C VDD_IN 5263mW/5263mW VDD_CPU_GPU_CV 717mW/717mW VDD_SOC 1794mW/1794mW")
# L4T 32 (Jetson Nano) form, no units, in the documented `<rail> X/Y` layout with the documented RAM/CPU fields
NANO_L4T32 = ("RAM 1554/3956MB (lfb 174x4MB) SWAP 0/1978MB (cached 0MB) IRAM 0/252kB(lfb 252kB) CPU [8%@1479,3%@1479,"
              "4%@1479,3%@1479] EMC_FREQ 0% GR3D_FREQ 0% PLL@26.5C CPU@29C GPU@27.5C AO@36C thermal@28C "
              "POM_5V_IN 2456/2301 POM_5V_GPU 0/0 POM_5V_CPU 404/380")
JTOP_POWER = {"rail": {"VDD_CPU_GPU_CV": {"volt": 4984, "curr": 144, "warn": 32760, "crit": 32760, "power": 717, "avg": 717},
                       "VDD_SOC": {"volt": 4984, "curr": 360, "warn": 32760, "crit": 32760, "power": 1794, "avg": 1794}},
              "tot": {"volt": 4984, "curr": 1056, "warn": 32760, "crit": 32760, "power": 5263, "avg": 5263, "name": "VDD_IN"}}


def test_tegrastats_rails_jetpack6():
    rails = power.parse_tegrastats(ORIN_NANO_JP6)
    assert rails == {"VDD_IN": (5263, 5263), "VDD_CPU_GPU_CV": (717, 717), "VDD_SOC": (1794, 1794)}  # not RAM/SWAP
    assert power.total_mw(rails) == ("VDD_IN", 5263)


def test_tegrastats_rails_l4t32_without_units():
    rails = power.parse_tegrastats(NANO_L4T32)
    assert rails["POM_5V_IN"] == (2456, 2301) and rails["POM_5V_CPU"] == (404, 380) and "RAM" not in rails
    assert power.total_mw(rails) == ("POM_5V_IN", 2456)  # the current value, not the running average
    assert power.total_mw(power.parse_tegrastats("RAM 1554/3956MB CPU [8%@1479]")) is None


def test_jtop_total():
    assert power.jtop_total_mw(JTOP_POWER) == ("VDD_IN", 5263)
    assert power.jtop_total_mw({"rail": {}, "tot": {}}) is None


def test_tegrastats_sampler_reads_a_live_process(tmp_path):
    """A stand-in `tegrastats` (the documented JetPack 6 line, 5263 mW then 7263 mW) read through the real pipe."""
    exe = tmp_path / "tegrastats"
    exe.write_text(f"#!{sys.executable}\nimport sys, time\n"
                   f"line = {ORIN_NANO_JP6!r}\n"
                   "for i in range(40):\n"
                   "    print(line.replace('VDD_IN 5263mW', 'VDD_IN %dmW' % (5263 if i < 20 else 7263)), flush=True)\n"
                   "    time.sleep(0.02)\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    s = power.TegrastatsSampler(interval_ms=20, command=str(exe))
    try:
        deadline = time.monotonic() + 10
        while len(s.samples) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        s.close()
    assert s.rail == "VDD_IN" and [mw for _, mw in s.samples] == [5263.0] * 20 + [7263.0] * 20


class _Windows:
    """Samples by time window: the idle window reads 5 W, the busy one 8 W."""

    rail = "VDD_IN"

    def __init__(self):
        self.calls = 0

    def window(self, t0, t1):
        self.calls += 1
        return [5000.0, 5000.0] if self.calls == 1 else [8000.0, 8000.0, 8000.0]


def test_energy_per_inference_is_extra_power_times_time_per_call():
    n = []
    r = power.measure(lambda: (n.append(1), time.sleep(0.01)), _Windows(), seconds=0.2, idle_s=0.05)
    per_call_ms = 1e3 * 0.2 / len(n)
    assert r["idle_w"] == 5.0 and r["busy_w"] == 8.0 and r["delta_w"] == 3.0 and r["inferences"] == len(n)
    assert r["energy_mj_per_inference"] == pytest.approx(3.0 * per_call_ms, rel=0.15)
    assert r["total_mj_per_inference"] == pytest.approx(8.0 * per_call_ms, rel=0.15)


def test_no_jetson_no_sampler():
    if os.path.exists("/etc/nv_tegra_release"):
        pytest.skip("this is a Jetson")
    assert power.sampler() is None
