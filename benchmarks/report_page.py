"""Size and opening time of a `curvebench report` page in headless Chromium.

    python benchmarks/report_page.py [--file RESULTS.h5 ...] [--stats STATS.nc] [--repeats 5] [--json out.json]
                                     [--screenshot PNG]

Without ``--file`` the page is built from a synthetic 72,000-stimulus x 10-channel sweep
(720 orientations x 100 curvatures, the article's curves grid; ``suites.analysis.synthetic``),
which has the same shape and the same page size as a real run of that size.

Opening time: each repeat navigates a fresh tab to the file; ``load`` is the wall time of
``driver.get`` (until the load event) and ``ready`` the page's own ``performance.now()``
when every heatmap, radial plot and table has been built (ms since navigation start).
Medians and IQR over repeats; the machine's load is printed with them.

``--screenshot PNG`` then saves the page as a user sees it: the mouse on the strongest cell
of the fourth heatmap (its stimulus in the inspector) and that unit isolated in the radial
plot (how ``docs/img/report.png`` is made).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _page(files: list[str], out: Path, stats_path: str | None) -> Path:
    from suites.analysis.report import ReportOptions
    from suites.report_stimuli import write_report

    options = None
    if stats_path:
        from suites.results.files import load_stats

        options = ReportOptions(stats=load_stats(stats_path))
    if files:
        from suites.results.files import open_for_report  # results, discover folders, optimize files

        runs = [(Path(f).name if Path(f).is_dir() else Path(f).stem, open_for_report(f)) for f in files]
    else:
        from suites.analysis.synthetic import synthetic_results

        units = [{"preferred": 36.0 * i, "peak": 8.0, "echo": 0.2 * (i % 2)} for i in range(10)]
        ds = synthetic_results(units, orientations=np.arange(0, 360, 0.5), curvatures=np.linspace(0, 0.0982, 100),
                               noise=0.05, attrs={"suite_name": "synthetic 72,000 x 10"})
        runs = [("synthetic-72000x10", ds)]
    return write_report(runs, out, options)


def _screenshot(driver, out: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    driver.set_window_size(1400, 860)
    maps = driver.find_elements("css selector", "#run-0 .hm canvas.heatmap")
    ci = min(3, len(maps) - 1)
    # the strongest cell of that channel, from the page's own data
    io, ik, n_o, n_k = driver.execute_script(
        "const run = window.__report.data.runs[0], L = run.layers[0], O = run.orientation.length, K = run.curvature.length;"
        "const b = atob(L.grids['']), u = new Uint8Array(b.length); for (let i = 0; i < b.length; i++) u[i] = b.charCodeAt(i);"
        "const g = new Float32Array(u.buffer); let best = -Infinity, at = 0;"
        "for (let j = 0; j < O * K; j++) { const v = g[arguments[0] * O * K + j]; if (v > best) { best = v; at = j; } }"
        "return [at % O, Math.floor(at / O), O, K];", ci)
    driver.execute_script("window.scrollTo(0, arguments[0].getBoundingClientRect().top + window.scrollY - 330)", maps[0])
    w, h = maps[ci].size["width"], maps[ci].size["height"]
    ActionChains(driver).move_to_element_with_offset(maps[ci], int((io + 0.5) / n_o * w - w / 2),
                                                     int((ik + 0.5) / n_k * h - h / 2)).perform()
    path = driver.find_elements("css selector", "#run-0 svg.radial path.curve")[ci]
    driver.execute_script("arguments[0].dispatchEvent(new MouseEvent('mouseenter'))", path)
    driver.save_screenshot(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", action="append", default=[], help="results file (repeat for several); default synthetic")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None)
    ap.add_argument("--stats", default=None, help="statistics file of `curvebench stats` for sigma")
    ap.add_argument("--screenshot", default=None, metavar="PNG", help="also save a screenshot of the page in use")
    args = ap.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    tmp = Path(tempfile.mkdtemp())
    t0 = time.perf_counter()
    path = _page(args.file, tmp / "report.html", args.stats)
    build_s = time.perf_counter() - t0
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or shutil.which("google-chrome") or "chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "chromedriver"), options=opts)
    loads, readies = [], []
    try:
        for _ in range(args.repeats):
            driver.get("about:blank")
            t = time.perf_counter()
            driver.get(path.as_uri())
            loads.append(time.perf_counter() - t)
            readies.append(driver.execute_script("return window.__report.ready") / 1000.0)
            n = driver.execute_script("return document.querySelectorAll('.hm canvas').length")
        if args.screenshot:
            _screenshot(driver, args.screenshot)
    finally:
        driver.quit()

    def summary(v: list[float]) -> dict:
        q = np.percentile(v, [25, 75])
        return {"median_s": statistics.median(v), "iqr_s": float(q[1] - q[0]), "all_s": v}

    result = {
        "page": str(path), "bytes": path.stat().st_size, "build_s": build_s, "heatmaps": n,
        "load": summary(loads), "ready": summary(readies), "loadavg": os.getloadavg(),
        "source": args.file or "synthetic 72,000 stimuli x 10 channels",
    }
    print(f"page {result['bytes'] / 1e6:.2f} MB ({n} heatmaps), built in {build_s:.1f} s; "
          f"opened (load event) median {result['load']['median_s']:.2f} s (IQR {result['load']['iqr_s']:.2f}), "
          f"page built median {result['ready']['median_s']:.2f} s after navigation; load average {result['loadavg'][0]:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
