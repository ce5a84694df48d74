#!/usr/bin/env python3
"""The HTTP client of serve_test (tests/cluster/serve_test.cc): real requests to granary_serve
through Python's http.client.

  serve_client.py once ADDRESS METHOD PATH BODY_FILE OUT_FILE
      One request (BODY_FILE "-": no body). OUT_FILE gets the status on its first line and the
      response body after it.
  serve_client.py loop ADDRESS BODY_FILE STOP_FILE OUT_FILE MAX_SECONDS
      POST /score with BODY_FILE again and again until STOP_FILE exists (at most MAX_SECONDS).
      OUT_FILE gets one line per request: the status (0 if the connection failed), the
      delta_day of the answer, the first score and the time it was answered (seconds since
      the epoch), tab-separated.
"""
import http.client
import json
import os
import sys
import time

TIMEOUT_SECONDS = 10


def request(address, method, path, body):
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT_SECONDS)
    try:
        connection.putrequest(method, path)
        if body is not None:
            connection.putheader("Content-Type", "application/json")
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders()
        if body is not None:
            try:
                connection.send(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered before reading it all (e.g. 413)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def read_body(path):
    if path == "-":
        return None
    with open(path, "rb") as body:
        return body.read()


def main():
    mode = sys.argv[1]
    if mode == "once":
        address, method, path, body_file, out_file = sys.argv[2:7]
        status, text = request(address, method, path, read_body(body_file))
        with open(out_file, "w") as out:
            out.write(f"{status}\n{text}")
        return 0
    if mode == "loop":
        address, body_file, stop_file, out_file, max_seconds = sys.argv[2:7]
        body = read_body(body_file)
        deadline = time.monotonic() + float(max_seconds)
        with open(out_file, "w") as out:
            while not os.path.exists(stop_file) and time.monotonic() < deadline:
                try:
                    status, text = request(address, "POST", "/score", body)
                except OSError as error:
                    out.write(f"0\t{error}\t\t{time.time()}\n")
                    continue
                if status == 200:
                    answer = json.loads(text)
                    out.write(f"{status}\t{answer['version']['delta_day']}\t"
                              f"{answer['tasks'][0]['scores'][0]!r}\t{time.time()}\n")
                else:
                    out.write(f"{status}\t{text}\t\t{time.time()}\n")
                out.flush()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
