"""Regenerate docs/images/demo_report.png (the picture at the top of README.md).

Runs ``operando demo`` into a temporary folder and photographs the top of its offline
``report.html`` (comparison table and flux against potential) in Debian's chromium through
Playwright (headless), like ``docs/make_screenshots.py``.

Run:  .venv/bin/python docs/make_demo_screenshot.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "images" / "demo_report.png"
sys.path.insert(0, str(ROOT / "docs"))


def main() -> None:
    """Run the demo and write the screenshot."""
    from click.testing import CliRunner
    from make_screenshots import ARGS
    from playwright.sync_api import sync_playwright

    from pipelines.cli import cli

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "demo"
        result = CliRunner().invoke(cli, ["demo", "-o", str(out)])
        if result.exit_code != 0:
            raise SystemExit(result.output)
        print(result.output)  # the console transcript README.md shows
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=ARGS
            )
            page = browser.new_page(viewport={"width": 1640, "height": 720})
            page.goto((out / "report.html").as_uri())
            page.wait_for_selector("canvas")
            page.wait_for_timeout(2500)
            page.screenshot(path=TARGET, clip={"x": 0, "y": 0, "width": 1640, "height": 720})
            browser.close()
    print("wrote", TARGET)


if __name__ == "__main__":
    main()
