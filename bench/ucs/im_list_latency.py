"""GetImItemList latency for a list of 250 and of 1,000 contacts (Skype for Business's default
MaxContacts and Exchange's UCS limit): starts `tandem up` ($TANDEM_BIN) on free ports, fills
alice's Quick Contacts with exchangelib, and times 10 sequential GetImItemList calls per size.

Run: TANDEM_BIN=target/release/tandem .venv/bin/python bench/ucs/im_list_latency.py
"""

import os, statistics, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "interop"))
from conftest import Tandem, DEMO_PASSWORD, DOMAIN
import test_ucs as u
t = Tandem(Path(os.environ["TANDEM_BIN"]), Path(tempfile.mkdtemp()))
t.start()
try:
    st = t.status(); os.environ["REQUESTS_CA_BUNDLE"] = st["ca_certificate"]
    d = {"t": t, "ews": st["mailbox"]["ews_url"], "ca": st["ca_certificate"]}
    from exchangelib import Contact
    from exchangelib.indexed_properties import ImAddress
    acc = u.account(d); f = u.quick_contacts(acc)
    for n in (250, 1000):
        have = len(u.im_list(d)[1])
        acc.bulk_create(folder=f, items=[Contact(folder=f, display_name=f"C{i}", im_addresses=[ImAddress(label="ImAddress1", im_address=f"sip:m{n}x{i}@example.org")]) for i in range(n - have)], chunk_size=500)
        times = []
        for _ in range(10):
            s = time.perf_counter(); g, p = u.im_list(d); times.append(time.perf_counter() - s)
        print(f"GetImItemList with {len(p)} contacts: p50 {statistics.median(times)*1000:.0f} ms, max {max(times)*1000:.0f} ms (10 calls)")
finally:
    t.kill_all()
