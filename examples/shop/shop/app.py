"""The shop's web server: standard library only, plus the greeting library."""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import greeting

from shop import db


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/healthz":
            return self.reply(200, {"ok": True})
        if self.path == "/":
            with db.connect() as conn:
                products = [
                    {"name": name, "price": price}
                    for name, price in conn.execute("SELECT name, price FROM products ORDER BY name")
                ]
            return self.reply(200, {
                "message": greeting.greet(os.environ.get("SHOP_NAME", "corner shop")),
                "release": os.environ.get("COMMIT_SHA", "unknown"),
                "products": products,
            })
        return self.reply(404, {"error": "not found"})

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    port = int(os.environ.get("PORT", "8000"))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    print("shop listening on port %d" % port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
