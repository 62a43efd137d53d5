"""Full-page screenshots of an HTML report in headless Chromium, to check it by eye (readable, nothing cut off).

    python tools/screenshot_report.py deploy_out/report.html -o shots/ [--width 1280] [--page-height 1800]

Writes shots/<name>_full.png (the whole page, trailing blank space trimmed) and shots/<name>_page_NN.png (the same
cut into screen-sized pages, which an image viewer shows at full resolution). Needs Chromium (Debian: `apt-get
install chromium`); it runs with no network, no GPU, no sandbox and a fresh profile.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--hide-scrollbars", "--force-device-scale-factor=1")


def find_chromium() -> str:
    for name in CHROMIUM:
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit("Chromium not found: apt-get install chromium (Debian) and rerun")


def screenshot(html: Path, out: Path, width: int = 1280, max_height: int = 30000, timeout: float = 120) -> Path:
    """A screenshot of a tall window (max_height), trimmed of the blank space below the page's end."""
    with tempfile.TemporaryDirectory(prefix="edgecls-chromium-") as profile:
        raw = Path(profile) / "raw.png"
        cmd = [find_chromium(), *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{max_height}",
               f"--screenshot={raw}", html.resolve().as_uri()]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if not raw.is_file():
            raise SystemExit(f"chromium wrote no screenshot (exit {r.returncode}): {r.stderr[-800:]}")
        img = Image.open(raw).convert("RGB")
        a = np.asarray(img)
        rows = np.flatnonzero((a != a[-1:, :, :]).any(axis=(1, 2)))  # rows that differ from the last (blank) row
        bottom = int(rows[-1]) + 24 if rows.size else a.shape[0]
        if bottom >= max_height - 1:
            print(f"warning: the page may be taller than {max_height} px; raise --max-height", file=sys.stderr)
        img = img.crop((0, 0, width, min(bottom, a.shape[0])))
        out.parent.mkdir(parents=True, exist_ok=True)
        img.save(out)
        return out


def pages(full: Path, page_height: int) -> list[Path]:
    img = Image.open(full)
    out = []
    for i, top in enumerate(range(0, img.height, page_height)):
        p = full.with_name(full.stem.replace("_full", "") + f"_page_{i + 1:02d}.png")
        img.crop((0, top, img.width, min(img.height, top + page_height))).save(p)
        out.append(p)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("html", type=Path, help="the report (e.g. deploy_out/report.html)")
    ap.add_argument("-o", "--out-dir", type=Path, default=Path("shots"), help="where the PNGs go")
    ap.add_argument("--width", type=int, default=1280, help="browser window width, px")
    ap.add_argument("--max-height", type=int, default=30000, help="tallest page captured, px")
    ap.add_argument("--page-height", type=int, default=1800, help="height of each page PNG, px")
    a = ap.parse_args(argv)
    full = screenshot(a.html, a.out_dir / f"{a.html.stem}_full.png", a.width, a.max_height)
    print(full)
    for p in pages(full, a.page_height):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
