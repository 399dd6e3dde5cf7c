"""Sphinx tweaks for the course book (loaded through ``_config.yml``'s ``local_extensions``).

- Drops sphinx-thebe's scripts: the book has no live-code button, and sphinx-thebe 0.3 adds its
  inline ``const THEBE_JS_URL`` script twice under Sphinx 7, which is a JavaScript error on
  every page (and it names a CDN URL).
- Adds ``_static/widgets-offline.js`` before every other script, so that saved widgets
  render with the vendored widget manager and MathJax 3 (see that file).
"""

from __future__ import annotations

from typing import Any


def _is_thebe(asset: Any) -> bool:
    filename = str(getattr(asset, "filename", "") or "")
    body = str((getattr(asset, "attributes", None) or {}).get("body", ""))
    return "thebe" in filename or "THEBE_JS_URL" in body


def _drop_thebe(app, pagename: str, templatename: str, context: dict, doctree) -> None:
    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = [asset for asset in context[key] if not _is_thebe(asset)]


def setup(app) -> dict:
    app.connect("html-page-context", _drop_thebe, priority=900)
    app.add_js_file("widgets-offline.js", priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
