"""Headless Chromium screenshots of the built site: ``python docs/hooks/screenshots.py SITE_DIR OUT_DIR``.

Serves SITE_DIR on 127.0.0.1 (a free port, this process only), takes one
screenshot per page in :data:`PAGES` with Debian's ``chromium`` (no network,
no GPU, no sandbox: it runs as root in a container), writes them to OUT_DIR and
stops the server. ``make screenshots`` runs it after ``make docs``.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import threading
from pathlib import Path

PAGES = {"home.png": "", "judging.png": "judging/"}
WINDOW = "1280,1600"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                  "--virtual-time-budget=3000", f"--window-size={WINDOW}"]
TIMEOUT_S = 120


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass


def browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("no chromium found: on Debian, apt-get install chromium (make screenshots is not part of "
                     "make test for this reason)")


def main(site: Path, out: Path) -> int:
    if not (site / "index.html").exists():
        raise SystemExit(f"{site}/index.html is missing: build the site first (make docs)")
    out.mkdir(parents=True, exist_ok=True)
    chromium = browser()
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        for name, page in PAGES.items():
            url = f"http://127.0.0.1:{server.server_address[1]}/{page}"
            target = (out / name).resolve()
            subprocess.run([chromium, *CHROMIUM_FLAGS, f"--screenshot={target}", url], check=True,
                           timeout=TIMEOUT_S, capture_output=True)
            print(f"{url} -> {target}")
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1]), Path(sys.argv[2])))
