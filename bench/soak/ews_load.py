"""EWS load for the soak (bench/soak/run.sh): CreateItem (one SaveOnly message into Drafts) and
FindItem (first page of 100 in Drafts, IdOnly) taking turns, at a fixed total rate, from
`--clients` threads with kept-alive sessions, for `--seconds`. Prints one JSON line:
{"requests": N, "errors": N, "first_errors": [...], "p50_ms": x, "p99_ms": y}.
An error is anything but HTTP 200 with ResponseClass="Success" in every response message."""

from __future__ import annotations

import argparse
import json
import threading
import time

import requests

M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
S = "http://schemas.xmlsoap.org/soap/envelope/"


def envelope(body: str) -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{S}" xmlns:m="{M}" xmlns:t="{T}">'
            '<s:Header><t:RequestServerVersion Version="Exchange2016"/></s:Header>'
            f"<s:Body>{body}</s:Body></s:Envelope>").encode()


def create(n: int) -> bytes:
    return envelope('<m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId>'
                    '<t:DistinguishedFolderId Id="drafts"/></m:SavedItemFolderId><m:Items><t:Message>'
                    f"<t:Subject>soak {n}</t:Subject><t:Body BodyType=\"Text\">soak body {n}</t:Body>"
                    "</t:Message></m:Items></m:CreateItem>")


FIND = envelope('<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>'
                '<m:IndexedPageItemView MaxEntriesReturned="100" Offset="0" BasePoint="Beginning"/>'
                '<m:ParentFolderIds><t:DistinguishedFolderId Id="drafts"/></m:ParentFolderIds></m:FindItem>')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--rate", type=float, required=True, help="requests per second, both kinds together")
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--clients", type=int, default=8)
    a = ap.parse_args()

    lock = threading.Lock()
    counts = {"requests": 0, "errors": 0}
    first_errors: list[str] = []
    latencies: list[float] = []
    start = time.monotonic()
    interval = a.clients / a.rate  # each client sends every `interval` seconds

    def client(k: int):
        s = requests.Session()
        s.auth = (a.user, a.password)
        s.headers["Content-Type"] = "text/xml; charset=utf-8"
        n = 0
        due = start + k * interval / a.clients
        while True:
            now = time.monotonic()
            if now - start >= a.seconds:
                return
            if due > now:
                time.sleep(due - now)
            due += interval
            body = create(k * 10_000_000 + n) if n % 2 == 0 else FIND
            n += 1
            t0 = time.monotonic()
            try:
                # verify per request: requests lets REQUESTS_CA_BUNDLE override a session's.
                r = s.post(a.url, data=body, timeout=30, verify=a.ca)
                ok = r.status_code == 200 and 'ResponseClass="Success"' in r.text and 'ResponseClass="Error"' not in r.text
                what = f"{r.status_code} {r.text[:200]}"
            except requests.RequestException as e:
                ok, what = False, repr(e)
            elapsed = time.monotonic() - t0
            with lock:
                counts["requests"] += 1
                latencies.append(elapsed)
                if not ok:
                    counts["errors"] += 1
                    if len(first_errors) < 5:
                        first_errors.append(what)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    pick = lambda q: round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1) if latencies else -1  # noqa: E731
    print(json.dumps(counts | {"first_errors": first_errors, "p50_ms": pick(0.5), "p99_ms": pick(0.99),
                               "achieved_per_s": round(counts["requests"] / a.seconds, 1)}))


if __name__ == "__main__":
    main()
