"""Open the built book in a real browser and check what a reader would see.

Serves ``_build/html`` on 127.0.0.1 (a random free port) and drives Debian's Chromium through
Playwright (no browser download). Every page of the table of contents must:

- load without console errors or failed requests;
- request nothing outside 127.0.0.1 (every request is routed; any other host fails the test);
- show every image (``naturalWidth > 0``);

and, in addition: each lesson page has its "Open in Colab" link; a page with math has MathJax
output; a page with saved ipywidgets state (day 23's sampling explorer, day 10's heatmap box)
renders every saved widget view, visibly, with the images its output areas hold;
``search.html?q=attention`` lists results. A screenshot of one lesson page is saved to
``_build/screenshots/`` and its path printed.

Usage::

    python -m tools.browser_test [--html _build/html] [--chromium /usr/bin/chromium]

Exits 1 with one line per problem.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import sys
import threading
from pathlib import Path
from typing import Optional
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``directory`` on 127.0.0.1 at a free port in a daemon thread; return server, base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def toc_pages(root: Path) -> list[str]:
    """The documents of ``_toc.yml`` in order (``root`` first), as paths without suffix."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    pages = [toc["root"]]

    def walk(entries) -> None:
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    walk(toc.get("parts"))
    walk(toc.get("chapters"))
    return pages


def run(html: Path, chromium: str, screenshot_dir: Path) -> list[str]:
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    server, base = serve(html)
    pages = toc_pages(html.resolve().parents[1])
    lessons = [p for p in pages if p.startswith("solutions/")]
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            current: dict[str, str] = {"page": ""}

            def route(route_, request) -> None:
                host = urlparse(request.url).hostname
                if request.url.startswith(("data:", "blob:", "about:")) or host == "127.0.0.1":
                    route_.continue_()
                else:
                    problems.append(f"{current['page']}: requested an outside URL {request.url}")
                    route_.abort()

            context.route("**/*", route)
            page = context.new_page()
            page.on("console", lambda m: m.type == "error" and problems.append(f"{current['page']}: console error: {m.text}"))
            page.on("pageerror", lambda e: problems.append(f"{current['page']}: JavaScript error: {e}"))
            page.on("requestfailed", lambda r: urlparse(r.url).hostname == "127.0.0.1" and problems.append(
                f"{current['page']}: request failed: {r.url} ({r.failure})"))
            page.on("response", lambda r: r.status >= 400 and problems.append(f"{current['page']}: HTTP {r.status} for {r.url}"))
            math_pages = widget_pages = 0
            for doc in pages:
                current["page"] = f"{doc}.html"
                response = page.goto(base + f"{doc}.html", wait_until="load")
                if response is None or not response.ok:
                    problems.append(f"{doc}.html: did not load (status {response.status if response else 'none'})")
                    continue
                page.wait_for_load_state("networkidle")
                broken = page.evaluate(
                    "() => Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
                    ".map(i => i.currentSrc || i.src).map(s => s.slice(0, 80))"
                )
                for src in broken:
                    problems.append(f"{doc}.html: image has no pixels: {src}")
                if page.locator("div.math, span.math").count() > 0:  # Sphinx's math markup
                    math_pages += 1
                    try:
                        page.wait_for_selector("mjx-container", timeout=10_000)
                    except Exception:  # noqa: BLE001 - reported as a problem
                        problems.append(f"{doc}.html: has math but MathJax rendered none")
                views = page.locator("script[type='application/vnd.jupyter.widget-view+json']").count()
                if views:
                    widget_pages += 1
                    problems.extend(f"{doc}.html: {p}" for p in _check_widgets(page, views))
                if doc in lessons:
                    if page.locator("a[href*='colab.research.google.com']").count() == 0:
                        problems.append(f"{doc}.html: no Open in Colab link")
            if math_pages == 0:
                problems.append("no page of the book has math; cannot check that MathJax renders")
            if lessons:
                current["page"] = f"{lessons[0]}.html"
                page.goto(base + f"{lessons[0]}.html", wait_until="networkidle")
                screenshot_dir.mkdir(parents=True, exist_ok=True)
                shot = screenshot_dir / f"{Path(lessons[0]).name}.png"
                page.screenshot(path=str(shot), full_page=False)
                print(f"screenshot: {shot}")
            current["page"] = "search.html?q=attention"
            page.goto(base + "search.html?q=attention", wait_until="networkidle")
            try:
                page.wait_for_selector("#search-results li, ul.search li", timeout=15_000)
                hits = page.locator("#search-results li, ul.search li").count()
                print(f"search for 'attention': {hits} result(s)")
            except Exception:  # noqa: BLE001
                problems.append("search.html?q=attention: no results")
            print(f"checked {len(pages)} page(s), {len(lessons)} lesson(s), {math_pages} with math, "
                  f"{widget_pages} with saved widgets")
            browser.close()
    finally:
        server.shutdown()
    return problems


def _check_widgets(page, views: int) -> list[str]:
    """Problems with the saved widgets of the open page: ``views`` saved views must render.

    The html-manager (vendored, see tools/vendor.py) draws each saved view as a
    ``.jupyter-widgets`` element beside its script tag; each must be visible, and the images
    inside (an Output widget's saved figure) must have pixels.
    """
    try:
        page.wait_for_function(
            "n => document.querySelectorAll('.widget-subarea .jupyter-widgets').length >= n",
            arg=views, timeout=20_000)
    except Exception:  # noqa: BLE001 - reported as a problem
        return [f"{views} saved widget view(s), but the widget manager rendered none"]
    shown = page.evaluate(
        "() => Array.from(document.querySelectorAll('script[type=\"application/vnd.jupyter.widget-view+json\"]'))"
        ".map(s => { const v = s.parentElement.querySelector('.jupyter-widgets');"
        " if (!v) return false; const r = v.getBoundingClientRect(); return r.width > 0 && r.height > 0; })"
    )
    problems = [f"saved widget view {i + 1} of {views} is not visible" for i, ok in enumerate(shown) if not ok]
    page.wait_for_timeout(500)  # images inside output widgets are decoded after insertion
    broken = page.evaluate(
        "() => Array.from(document.querySelectorAll('.jupyter-widgets img'))"
        ".filter(i => !(i.complete && i.naturalWidth > 0)).length"
    )
    if broken:
        problems.append(f"{broken} image(s) inside saved widgets have no pixels")
    return problems


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.browser_test", description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--screenshots", type=Path, default=ROOT / "_build" / "screenshots")
    args = parser.parse_args(argv)
    if not (args.html / "index.html").exists():
        print(f"error: {args.html}/index.html is missing; build the book first (jupyter-book build .)", file=sys.stderr)
        return 1
    if not Path(args.chromium).exists():
        print(f"error: {args.chromium} is missing; install it with: apt-get install -y chromium", file=sys.stderr)
        return 1
    problems = run(args.html, args.chromium, args.screenshots)
    for problem in problems:
        print(f"problem: {problem}")
    print("browser test: " + ("FAILED" if problems else "passed"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
