"""A platform console that embeds its customer's Activity Logs from Logbook.

The console's backend asks Logbook for a viewer session of the signed-in customer (here a fixed
person) with an admin key, and puts the one-time URL in an <iframe>. Run it with:

    LOGBOOK_URL=http://127.0.0.1:8080 LOGBOOK_ADMIN_KEY=lbk_... ACCOUNT=acme python3 host.py

and open http://localhost:8000/. Logbook must allow this page's origin to frame the view:
`[embed] frame_ancestors = ["http://localhost:8000"]`, or per account through
`PUT /api/v1/accounts/acme/embed`. Only Python's standard library is used.
"""

import html
import json
import os
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOGBOOK_URL = os.environ.get("LOGBOOK_URL", "http://127.0.0.1:8080").rstrip("/")
ADMIN_KEY = os.environ["LOGBOOK_ADMIN_KEY"]
ACCOUNT = os.environ.get("ACCOUNT", "acme")
PORT = int(os.environ.get("PORT", "8000"))


def viewer_session_url(person):
    """Mints a viewer session for `person` and returns the URL that opens it once."""
    request = urllib.request.Request(
        f"{LOGBOOK_URL}/api/v1/viewer-sessions",
        data=json.dumps({
            "account": ACCOUNT,
            "person": person,
            "scope": os.environ.get("SCOPE", "all"),
            "export": True,
            "lifetime_seconds": 3600,
        }).encode(),
        headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)["url"]


class Console(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/":
            self.send_error(404)
            return
        # In a real console this is the person signed in to the platform.
        person = {"id": "user_8831", "name": "Ana Lima", "email": "ana@acme.example"}
        url = viewer_session_url(person)
        page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Acme Cloud console</title></head>
<body style="margin:0;font-family:system-ui">
<header style="padding:12px 16px;background:#10243e;color:#fff">Acme Cloud · Settings · <b>Activity Logs</b></header>
<iframe id="activity-logs" title="Activity Logs" src="{html.escape(url)}"
        style="border:0;width:100%;height:calc(100vh - 48px)"></iframe>
</body></html>"""
        body = page.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *arguments):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Console)
    print(f"console on http://localhost:{server.server_address[1]}/", flush=True)
    server.serve_forever()
