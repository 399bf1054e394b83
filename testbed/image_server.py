#!/usr/bin/env python3
"""The testbed's HTTP image server: what Glance fetches for web-download and http locations.

Usage: python3 image_server.py HOST PORT DIRECTORY

Serves the files of DIRECTORY (GET and HEAD, with Content-Length: Glance's http store asks the size
first), written there by testbed.py: a genuine qcow2 and a raw image, and their md5/sha256/sha512
sums beside them (`<file>.<algo>`, in the `sha512sum` format), since a scenario cannot hash a response
body. Plus `/slow-random`, Tempest's RandomDataHandler (tempest/common/image.py): HEAD announces
300 x 64 KiB; GET streams 64 KiB of random bytes every 0.2 s for up to 60 s, so that a hash
calculation is still running when a test deletes the image. Threaded: a slow stream must not block
the other requests. Standard library only; stopped by SIGTERM (testbed.py stop).
"""

import functools
import os
import signal
import sys
import time
from http import server

SLOW_CHUNK, SLOW_CHUNKS, SLOW_INTERVAL, SLOW_SECONDS = 64 * 1024, 300, 0.2, 60


class Handler(server.SimpleHTTPRequestHandler):
    """Static files from the served directory, and Tempest's slow random stream."""

    protocol_version = "HTTP/1.0"  # one request per connection: nothing stays half-open

    def do_GET(self):  # http.server's naming
        if self.path.split("?")[0] != "/slow-random":
            return super().do_GET()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        start = time.monotonic()
        while time.monotonic() - start < SLOW_SECONDS:
            try:
                self.wfile.write(os.urandom(SLOW_CHUNK))
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                break  # the client (Glance's hash calculation) went away
            time.sleep(SLOW_INTERVAL)
        return None

    def do_HEAD(self):
        if self.path.split("?")[0] != "/slow-random":
            return super().do_HEAD()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(SLOW_CHUNKS * SLOW_CHUNK))
        self.end_headers()
        return None

    def log_message(self, format, *args):  # the base class's signature
        sys.stdout.write(f"{self.log_date_time_string()} {format % args}\n")
        sys.stdout.flush()


def main(argv):
    host, port, directory = argv[1], int(argv[2]), argv[3]
    httpd = server.ThreadingHTTPServer((host, port), functools.partial(Handler, directory=directory))
    httpd.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"serving {directory} on http://{host}:{port}", flush=True)
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main(sys.argv)
