"""The dashboard web server: QuickSight's embedded pages, served on 127.0.0.1.

On AWS an embed URL opens ``https://<region>.quicksight.aws.amazon.com/embed/...``: a page
that draws the dashboard's visuals and fetches each visual's data from QuickSight as the
signed-in viewer. The stand-in does the same on a local port:

- ``GET /embed/<code>/dashboards/<id>``: the one-time code of an embed URL is exchanged for
  a session cookie, then the browser is sent on to the dashboard page;
- ``GET /dashboards/<id>``: the page (HTML built from the published definition: title,
  sheet tabs, one ``<div data-visual-id=...>`` per visual, dropdown controls);
- ``GET /api/dashboards/<id>/visuals/<visual_id>?p.<Parameter>=...&f.<FilterId>=...``: the
  visual's rows as JSON, queried as the session's user (row- and column-level security
  applied before the query sees a row);
- ``GET /static/vega.js``: Vega, Vega-Lite and vega-embed in one script, bundled by
  ``vl_convert.javascript_bundle()``: nothing is loaded from the internet.

What each request *means* is decided by ``dashboards.py`` (``web_request``); this module is
the HTTP plumbing, the page and its JavaScript. The server is a stdlib
``ThreadingHTTPServer`` on a free port, started on first use and stopped with the stack.
"""
from __future__ import annotations

import functools
import html
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SESSION_COOKIE = "qs_session"


@functools.lru_cache(maxsize=1)
def vega_bundle() -> bytes:
    """vega-embed, Vega-Lite and Vega as one script (about 900 kB; built once per process)."""
    import vl_convert
    return vl_convert.javascript_bundle().encode()


class _Handler(BaseHTTPRequestHandler):
    server_version = "localaws-quicksight"
    protocol_version = "HTTP/1.1"

    def do_GET(self):               # noqa: N802 (http.server's naming)
        parts = urlsplit(self.path)
        cookies = {}
        for item in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = item.strip().partition("=")
            if name:
                cookies[name] = value
        try:
            status, headers, body = self.server.app.web_request(
                parts.path, parse_qs(parts.query, keep_blank_values=True), cookies)
        except Exception as exc:    # a bug: say so on the page, keep serving
            status, headers, body = 500, [("Content-Type", "text/plain")], f"{type(exc).__name__}: {exc}"
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store" if not parts.path.startswith("/static/") else "max-age=3600")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):   # quiet: no line per request on stderr
        pass


class DashboardServer:
    """A threaded HTTP server on 127.0.0.1 and a free port; ``app.web_request`` answers."""

    def __init__(self, app):
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.app = app
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="localaws-quicksight-web", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# ------------------------------------------------------------------ responses
def json_response(status: int, payload: dict):
    return status, [("Content-Type", "application/json")], json.dumps(payload, sort_keys=True)


def message_page(status: int, title: str, message: str):
    """A small HTML page for errors (expired link, no access)."""
    body = (f"<!doctype html><html><head><meta charset='utf-8'><link rel='icon' href='data:,'>"
            f"<title>{html.escape(title)}</title></head><body style='font-family:sans-serif'>"
            f"<h1>{html.escape(title)}</h1><p class='qs-message'>{html.escape(message)}</p></body></html>")
    return status, [("Content-Type", "text/html; charset=utf-8")], body


def redirect(location: str, cookie: str | None = None, max_age: int | None = None):
    headers = [("Location", location)]
    if cookie is not None:
        headers.append(("Set-Cookie", f"{SESSION_COOKIE}={cookie}; Path=/; HttpOnly; SameSite=Lax"
                                      + (f"; Max-Age={max_age}" if max_age else "")))
    return 302, headers, b""


# ------------------------------------------------------------------ the page
STYLE = """
body { font-family: Helvetica, Arial, sans-serif; margin: 0; background: #f4f6f8; color: #16191f; }
header { background: #232f3e; color: white; padding: 10px 20px; }
header h1 { font-size: 18px; margin: 0; }
nav { padding: 8px 20px 0; }
nav button { border: 0; background: #dfe3e8; padding: 6px 14px; margin-right: 4px; cursor: pointer; }
nav button.active { background: white; font-weight: bold; }
.sheet { display: none; padding: 12px 20px; }
.sheet.active { display: block; }
.controls { margin-bottom: 10px; }
.controls label { margin-right: 14px; font-size: 13px; }
.visuals { display: flex; flex-wrap: wrap; gap: 12px; }
.visual { background: white; border: 1px solid #d5dbdb; padding: 10px; min-width: 320px; min-height: 120px; }
.visual h2 { font-size: 14px; margin: 0 0 6px; }
.kpi-value { font-size: 40px; font-weight: bold; padding: 20px 10px; }
.qs-restricted, .qs-error { color: #687078; font-style: italic; }
table.qs-table { border-collapse: collapse; font-size: 13px; }
table.qs-table td, table.qs-table th { border: 1px solid #d5dbdb; padding: 3px 8px; text-align: left; }
"""

SCRIPT = r"""
const PAGE = JSON.parse(document.getElementById('qs-page').textContent);
window.qsViews = {};
window.qsData = {};

function selections(sheet) {
  const q = new URLSearchParams();
  for (const c of sheet.controls) {
    const el = document.getElementById('ctl-' + c.id);
    if (!el || el.dataset.touched !== 'true') continue;
    const key = (c.kind === 'parameter' ? 'p.' : 'f.') + c.source;
    const values = Array.from(el.selectedOptions).map(o => o.value).filter(v => v !== '');
    if (values.length === 0) q.append(key, '');
    for (const v of values) q.append(key, v);
  }
  return q;
}

function cell(v) { return v === null || v === undefined ? '' : String(v); }

function drawTable(body, data) {
  const t = document.createElement('table');
  t.className = 'qs-table';
  const head = t.insertRow();
  for (const f of data.fields) { const th = document.createElement('th'); th.textContent = f.label; head.appendChild(th); }
  for (const r of data.rows) {
    const tr = t.insertRow();
    for (const f of data.fields) tr.insertCell().textContent = cell(r[f.id]);
  }
  body.appendChild(t);
}

async function drawVisual(sheet, v) {
  const div = document.querySelector('[data-visual-id="' + v.id + '"]');
  const body = div.querySelector('.visual-body');
  div.removeAttribute('data-rendered');
  const url = '/api/dashboards/' + encodeURIComponent(PAGE.dashboardId) + '/visuals/'
              + encodeURIComponent(v.id) + '?' + selections(sheet).toString();
  const response = await fetch(url, {credentials: 'same-origin'});
  const data = await response.json();
  if (window.qsViews[v.id]) { window.qsViews[v.id].finalize(); delete window.qsViews[v.id]; }
  body.innerHTML = '';
  window.qsData[v.id] = data;
  if (!response.ok) {
    body.innerHTML = '<p class="qs-error"></p>';
    body.firstChild.textContent = data.message;
  } else if (data.restricted) {
    body.innerHTML = '<p class="qs-restricted"></p>';
    body.firstChild.textContent = data.message;
  } else if (data.spec) {
    const result = await vegaEmbed(body, data.spec, {actions: false, renderer: 'svg'});
    window.qsViews[v.id] = result.view;
  } else if (data.type === 'kpi') {
    const f = data.fields[0];
    const value = data.rows.length ? data.rows[0][f.id] : null;
    body.innerHTML = '<div class="kpi-value"></div><div class="kpi-label"></div>';
    body.firstChild.textContent = value === null ? '-' : Number(value).toLocaleString('en-US');
    body.lastChild.textContent = f.label;
  } else {
    drawTable(body, data);
  }
  div.setAttribute('data-rendered', 'true');
}

async function drawSheet(sheet) {
  await Promise.all(sheet.visuals.map(v => drawVisual(sheet, v)));
}

function showSheet(id) {
  for (const s of document.querySelectorAll('.sheet')) s.classList.toggle('active', s.dataset.sheetId === id);
  for (const b of document.querySelectorAll('nav button')) b.classList.toggle('active', b.dataset.sheetId === id);
}

async function main() {
  for (const sheet of PAGE.sheets) {
    for (const c of sheet.controls) {
      const el = document.getElementById('ctl-' + c.id);
      el.addEventListener('change', async () => {
        el.dataset.touched = 'true';
        document.body.removeAttribute('data-rendered');
        await drawSheet(sheet);
        document.body.setAttribute('data-rendered', 'true');
      });
    }
  }
  for (const b of document.querySelectorAll('nav button')) b.addEventListener('click', () => showSheet(b.dataset.sheetId));
  await Promise.all(PAGE.sheets.map(drawSheet));
  document.body.setAttribute('data-rendered', 'true');
}
main();
"""


def render_page(dashboard_id: str, name: str, sheets: list[dict]) -> str:
    """The dashboard page. ``sheets``: ``[{id, name, visuals: [{id, type, title}],
    controls: [{id, kind, source, title, multi, options, selected}]}]``."""
    esc = html.escape
    tabs, bodies = [], []
    for i, sheet in enumerate(sheets):
        active = " active" if i == 0 else ""
        tabs.append(f"<button class='{active.strip()}' data-sheet-id='{esc(sheet['id'])}'>{esc(sheet['name'])}</button>")
        controls = []
        for c in sheet["controls"]:
            options = [f"<option value=''{' selected' if not c['selected'] else ''}>(All)</option>"]
            options += [f"<option value='{esc(str(o))}'{' selected' if str(o) in c['selected'] else ''}>{esc(str(o))}</option>"
                        for o in c["options"]]
            multiple = " multiple size='4'" if c["multi"] else ""
            controls.append(f"<label>{esc(c['title'])} <select id='ctl-{esc(c['id'])}' data-control-id='{esc(c['id'])}'"
                            f"{multiple}>{''.join(options)}</select></label>")
        visuals = [f"<div class='visual visual-{esc(v['type'])}' data-visual-id='{esc(v['id'])}'>"
                   f"<h2>{esc(v['title'])}</h2><div class='visual-body'></div></div>" for v in sheet["visuals"]]
        bodies.append(f"<section class='sheet{active}' data-sheet-id='{esc(sheet['id'])}'>"
                      f"<div class='controls'>{''.join(controls)}</div>"
                      f"<div class='visuals'>{''.join(visuals)}</div></section>")
    page = {"dashboardId": dashboard_id,
            "sheets": [{"id": s["id"], "visuals": [{"id": v["id"]} for v in s["visuals"]],
                        "controls": [{"id": c["id"], "kind": c["kind"], "source": c["source"]}
                                     for c in s["controls"]]} for s in sheets]}
    data = json.dumps(page, sort_keys=True).replace("</", "<\\/")
    return ("<!doctype html><html><head><meta charset='utf-8'><link rel='icon' href='data:,'>"
            f"<title>{esc(name)}</title><style>{STYLE}</style></head><body>"
            f"<header><h1>{esc(name)}</h1></header><nav>{''.join(tabs)}</nav>{''.join(bodies)}"
            f"<script type='application/json' id='qs-page'>{data}</script>"
            "<script src='/static/vega.js'></script>"
            f"<script>{SCRIPT}</script></body></html>")
