"""Print docs/parameters.md's tables from GaMPEN calibration reports (no TensorFlow).

    python bench/gampen_tables.py report REPORT_DIR             # coverage and errors beside the paper
    python bench/gampen_tables.py compare NAME=REPORT_DIR ...   # one row per report (size curve, transfer table)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PARAMETERS = ("bulge_to_total", "r_e_arcsec", "flux")
LEVELS = ("68.27", "95.45", "99.73")
PAPER_COVERAGE = {"bulge_to_total": (71.8, 96.9, 98.9), "r_e_arcsec": (68.1, 95.9, 98.3), "flux": (78.7, 98.2, 99.9),
                  "mean": (72.9, 97.0, 99.0)}


def read(folder: str) -> dict:
    return json.loads((Path(folder) / "calibration.json").read_text())


def level_key(report: dict, level: str) -> str:
    """The report's key for a level ('68' for 68.27 %)."""
    return level.split(".")[0]


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def report_tables(report: dict) -> list[str]:
    keys = [level_key(report, level) for level in LEVELS]
    lines = [f"{report['galaxies']:,} test galaxies, dropout {report['dropout_rate']:g}", "",
             "| coverage | " + " | ".join(f"{level} %" for level in LEVELS) + " | paper | within 3 points |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name in (*PARAMETERS, "mean"):
        ours = [100 * report["coverage"][name][k] for k in keys]
        gaps = [abs(v - float(level)) for v, level in zip(ours, LEVELS, strict=True)]
        lines.append(f"| {name} | " + " | ".join(f"{v:.1f} %" for v in ours) + " | "
                     + " / ".join(f"{v:.1f}" for v in PAPER_COVERAGE[name]) + " | "
                     + ("yes" if max(gaps) <= 3 else f"no (worst {max(gaps):.1f})") + " |")
    errors, absolute = report["typical_error"], report["typical_error_absolute"]
    lines += ["", "| | ours | paper |", "| --- | --- | --- |",
              f"| typical error L_B/L_T | {errors['bulge_to_total']:.3f} | 0.10 |",
              f"| typical error R_e | {percent(errors['r_e_arcsec'])} ({absolute['r_e_arcsec']:.3f}\") "
              "| 7 % (0.17\") |",
              f"| typical error F | {percent(errors['flux'])} ({absolute['flux']:.3g} nJy) | 1 % (6.3e4 nJy) |",
              f"| R^2 of magnitude / R_e / L_B/L_T | {report['r_squared']['magnitude']:.4f} / "
              f"{report['r_squared']['r_e_arcsec']:.4f} / {report['r_squared']['bulge_to_total']:.4f} "
              "| 0.998 / 0.980 / - |",
              f"| L_B/L_T residual std, single / two components | "
              f"{report['bulge_to_total_residual_std']['single_component']:.3f} / "
              f"{report['bulge_to_total_residual_std']['bulge_and_disk']:.3f} | 0.06 / 0.11 |",
              f"| typical error where not flagged: L_B/L_T / R_e | "
              f"{report['after_flagging']['bulge_to_total']['typical_error']:.3f} / "
              f"{percent(report['after_flagging']['r_e_arcsec']['typical_error'])} | 0.076 / - |"]
    for name, flag in report["flags"].items():
        lines.append(f"| flag {name}: precision / recall ({flag['predicted']} flagged, {flag['true']} true) | "
                     f"{percent(flag['precision'])} / {percent(flag['recall'])} | >= 97-99 % (accuracy of labels) |")
    return lines


def compare(named: list[str]) -> list[str]:
    lines = ["| model | L_B/L_T error | R_e error | F error | mean coverage 68.27 / 95.45 / 99.73 % |",
             "| --- | --- | --- | --- | --- |"]
    for item in named:
        name, _, folder = item.partition("=")
        report = read(folder)
        errors = report["typical_error"]
        coverage = " / ".join(f"{100 * report['coverage']['mean'][level_key(report, level)]:.1f}" for level in LEVELS)
        lines.append(f"| {name} | {errors['bulge_to_total']:.3f} | {percent(errors['r_e_arcsec'])} | "
                     f"{percent(errors['flux'])} | {coverage} |")
    return lines


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    print("\n".join(report_tables(read(arguments[0])) if command == "report" else compare(arguments)))
