"""Search benchmark through the running servers (issue 13, deliverable 8); run by run.sh.

1. A deployment (`tandem up`) in a temporary folder; USERS of the MAILBOXES (`user0`…) are
   imported into its directory so EWS can sign them in.
2. With the deployment stopped, ITEMS transcripts are seeded into its mailbox store through the
   Mailbox's data layer (the release `search_bench` test with SEARCH_BENCH_SEED_ONLY; items
   written per second with their index entries, index bytes per transcript).
3. The deployment again: FindItem with a QueryString over EWS (Basic auth, one keep-alive
   connection, a word of one transcript in its owner's Conversation History, at most 250
   results); `tandem ediscovery search --json` across every mailbox, selective (one transcript's
   word) and broad (two common words, thousands of matches counted per mailbox).

Prints one JSON object. Needs TANDEM_BIN (a release tandem) and cargo on PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "interop"))

import requests  # noqa: E402

from conftest import DEMO_PASSWORD, DOMAIN, Tandem  # noqa: E402

WORDS = ["budget", "review", "lunch", "release", "meeting"]


def pct(v: list[float], p: float) -> float:
    v = sorted(v)
    return round(v[round((len(v) - 1) * p)], 2)


def find_item(word: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" '
        'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><soap:Header>'
        '<t:RequestServerVersion Version="Exchange2013"/></soap:Header><soap:Body><m:FindItem Traversal="Shallow">'
        '<m:ItemShape><t:BaseShape>Default</t:BaseShape></m:ItemShape>'
        '<m:IndexedPageItemView MaxEntriesReturned="250" Offset="0" BasePoint="Beginning"/>'
        '<m:ParentFolderIds><t:DistinguishedFolderId Id="conversationhistory"/></m:ParentFolderIds>'
        f'<m:QueryString>{word}</m:QueryString></m:FindItem></soap:Body></soap:Envelope>'
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--mailboxes", type=int, default=1000)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--ediscovery-queries", type=int, default=30)
    ap.add_argument("--pg", action="store_true", help="the mailbox store on PostgreSQL at 127.0.0.1:5432")
    ap.add_argument("--debug-seed", action="store_true", help="seed with the debug test build (a quick look)")
    a = ap.parse_args()
    binary = Path(os.environ["TANDEM_BIN"])
    work = Path(tempfile.mkdtemp(prefix="tandem-search-bench-"))
    extra = ""
    db_url = None
    if a.pg:
        name = f"tandem_search_bench_{os.getpid()}"
        subprocess.run(["psql", "postgres://postgres@127.0.0.1:5432/postgres", "-qc", f"CREATE DATABASE {name}"],
                       check=True)
        db_url = f"postgres://postgres@127.0.0.1:5432/{name}"
        extra = f'database_url = "{db_url}"'
    t = Tandem(binary, work / "d", mailbox_extra=extra)
    out: dict = {"items": a.items, "mailboxes": a.mailboxes, "users_queried": a.users,
                 "backend": "postgres" if a.pg else "sqlite"}
    try:
        t.start()
        csv = work / "users.csv"
        csv.write_text("name,display_name,sip_address,primary_smtp_address,password\n" + "".join(
            f"user{m},User {m},sip:user{m}@{DOMAIN},user{m}@{DOMAIN},{DEMO_PASSWORD}\n" for m in range(a.users)))
        r = t.run("user", "import", "--csv", str(csv), *t.location, timeout=900)
        assert r.returncode == 0, r.stderr
        t.stop()

        env = dict(os.environ, SEARCH_BENCH_ITEMS=str(a.items), SEARCH_BENCH_MAILBOXES=str(a.mailboxes),
                   SEARCH_BENCH_SEED_ONLY="1",
                   SEARCH_BENCH_DB_URL=db_url or f"sqlite://{t.data_dir / 'mailbox.db'}")
        profile = [] if a.debug_seed else ["--release"]
        seed = subprocess.run(["cargo", "test", *profile, "--locked", "-p", "tandem-mailbox", "--lib", "search_bench",
                               "--", "--ignored", "--nocapture"], cwd=ROOT, env=env, capture_output=True, text=True)
        lines = [x for x in seed.stdout.splitlines() if x.startswith("{")]
        assert seed.returncode == 0 and lines, seed.stdout[-2000:] + seed.stderr[-2000:]
        out["seed"] = json.loads(lines[-1])

        t.restart()
        st = t.status()
        ews, ca = st["mailbox"]["ews_url"], st["ca_certificate"]
        os.environ["REQUESTS_CA_BUNDLE"] = ca  # requests lets the environment override Session.verify
        per_box = a.items // a.mailboxes
        sessions = {}
        for u in range(a.users):
            s = requests.Session()
            s.auth = (f"user{u}", DEMO_PASSWORD)
            s.verify = ca
            s.headers["Content-Type"] = "text/xml; charset=utf-8"
            sessions[u] = s
            r = s.post(ews, data=find_item("warmup"), timeout=60)  # signs in once (cached 60 s)
            assert r.status_code == 200, r.text[:500]

        def transcript(q: int) -> int:
            # A transcript of a queried user: n % mailboxes is its mailbox.
            return ((q * 7919) % per_box) * a.mailboxes + (q % a.users)

        took = []
        for q in range(a.queries):
            n = transcript(q)
            s = sessions[n % a.mailboxes]
            start = time.perf_counter()
            r = s.post(ews, data=find_item(f"t{n}x3"), timeout=60)
            took.append((time.perf_counter() - start) * 1000)
            assert r.status_code == 200 and 'TotalItemsInView="1"' in r.text, r.text[:800]
        out["querystring_ews_ms"] = {"p50": pct(took, 0.5), "p99": pct(took, 0.99), "n": len(took)}

        def ediscovery(query: str) -> tuple[float, dict]:
            start = time.perf_counter()
            r = t.run("ediscovery", "search", "--query", query, "--json", *t.location, timeout=600)
            ms = (time.perf_counter() - start) * 1000
            assert r.returncode == 0, r.stderr
            return ms, json.loads(r.stdout)

        sel = []
        for q in range(a.ediscovery_queries):
            n = transcript(q * 31 + 7)
            ms, found = ediscovery(f"t{n}x3")
            sel.append(ms)
            assert sum(m["ResultItemsCount"] for m in found["Mailboxes"]) == 1, found
        out["ediscovery_selective_cli_ms"] = {"p50": pct(sel, 0.5), "p99": pct(sel, 0.99), "n": len(sel)}
        broad, hits = [], 0
        for q in range(5):
            ms, found = ediscovery(f"{WORDS[q]} AND {WORDS[(q + 3) % len(WORDS)]}")
            broad.append(ms)
            hits = max(hits, sum(m["ResultItemsCount"] for m in found["Mailboxes"]))
        out["ediscovery_broad_cli_ms"] = {"p50": pct(broad, 0.5), "p99": pct(broad, 0.99), "n": len(broad),
                                          "most_hits": hits}
        # The CLI's own cost (process start, config, store open): a search that finds nothing.
        base = [ediscovery("zzzqqq")[0] for _ in range(5)]
        out["ediscovery_cli_floor_ms"] = pct(base, 0.5)
    finally:
        t.kill_all()
        if db_url:
            subprocess.run(["psql", "postgres://postgres@127.0.0.1:5432/postgres", "-qc",
                            f"DROP DATABASE IF EXISTS {db_url.rsplit('/', 1)[1]}"], check=False)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
