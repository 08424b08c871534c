"""Screenshots of the case page for the README: a 2,000-account campaign (14 of its members end
users behind a reseller's key) among organic accounts, landed straight into an embedded
ClickHouse, its page written by `campaigns show --html` code and photographed by headless
Chromium (Debian's `chromium`).

The traffic is made here, not replayed through the pipeline: it shows the page's layout at this
size (what sits above the first long table), not a detection result.

    .venv/bin/python infra/case_page_screenshots.py [--out docs/case-page]
"""

from __future__ import annotations

import argparse
import datetime
import random
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image  # matplotlib's own dependency (the eval extra)

from extractguard.investigation.case import load_case
from extractguard.investigation.case_page import write_case_page
from extractguard.investigation.source import Source
from extractguard.storage import migrate
from extractguard.storage.client import connect

T0 = datetime.datetime(2026, 11, 30, 6, 0, tzinfo=datetime.UTC)
HOURS = 8
WIDTH, SPLIT, ABOVE_TABLES = 1100, 1400, 3650  # px: the first long table starts below ABOVE_TABLES
MEMBERS, ORGANIC, END_USERS, HARVESTING_END_USERS = 1986, 3000, 40, 14
COLUMNS = ["event_id", "event_time", "account_id", "org_id", "end_user_id", "api_key_hash", "account_created",
           "client_ip_prefix", "tls_ja4", "operation_name", "provider_name", "request_model", "turn_index",
           "output_tokens", "input_tokens", "request_logprobs", "request_temperature", "prompt_template_hash",
           "prompt_cot_elicitation"]  # fmt: skip


def _events(rng: random.Random) -> tuple[list[list[Any]], list[str]]:
    rows: list[list[Any]] = []
    members: list[str] = []
    for i in range(MEMBERS):  # the campaign ramps up over its first three hours, then harvests
        account = f"acct-c{i:05d}"
        members.append(account)
        start = rng.uniform(0, 3 * 3600)
        at = start
        while at < HOURS * 3600:
            rows.append([f"c{i}-{int(at)}", T0 + datetime.timedelta(seconds=at), account, f"org-c{i % 700}", None,
                         f"key-{account}", T0 - datetime.timedelta(hours=rng.uniform(1, 30)),
                         f"203.0.{113 + i % 6}.0/24", "t13d1516h2_8daaf6152771", "chat", "openai", "m-large", 0,
                         rng.randint(1200, 3000), rng.randint(60, 200), True, 0.0, f"tpl-sweep-{i % 5}",
                         rng.random() < 0.6])  # fmt: skip
            at += rng.expovariate(1 / 600)
    for u in range(END_USERS):  # a reseller's key: most of its end users are honest
        harvesting = u < HARVESTING_END_USERS
        if harvesting:
            members.append(f"acct-reseller/eu:{u:08x}")
        at = rng.uniform(0, 3600)
        while at < HOURS * 3600:
            rows.append([f"r{u}-{int(at)}", T0 + datetime.timedelta(seconds=at), "acct-reseller", "org-reseller",
                         f"{u:08x}", "key-reseller", None, "192.0.2.0/24", "t13d1516h2_8daaf6152771", "chat",
                         "openai", "m-large", 0 if harvesting else rng.randint(0, 5),
                         rng.randint(1200, 3000) if harvesting else rng.randint(50, 600), rng.randint(60, 400),
                         harvesting, 0.0 if harvesting else 0.7, "tpl-sweep-0" if harvesting else f"tpl-app-{u}",
                         harvesting and rng.random() < 0.6])  # fmt: skip
            at += rng.expovariate(1 / (600 if harvesting else 1200))
    for i in range(ORGANIC):
        account = f"acct-o{i:05d}"
        at = rng.uniform(0, 7200)
        while at < HOURS * 3600:
            rows.append([f"o{i}-{int(at)}", T0 + datetime.timedelta(seconds=at), account, f"org-o{i}", None,
                         f"key-{account}", T0 - datetime.timedelta(days=rng.uniform(30, 900)),
                         f"198.{51 + i % 50}.{i % 250}.0/24", rng.choice(["t13d_browser", "t13d_python", "t13d_node"]),
                         "chat", "openai", rng.choice(["m-large", "m-small"]), rng.randint(0, 6), rng.randint(50, 900),
                         rng.randint(30, 2000), False, 0.7, f"tpl-o{i % 900}", rng.random() < 0.05])  # fmt: skip
            at += rng.expovariate(1 / 1800)
    return rows, members


def _campaign_versions(members: list[str]) -> list[list[Any]]:
    fingerprints = [(f"ip_prefix:203.0.{113 + k}.0/24", 60.0 - k, MEMBERS // 6) for k in range(6)]
    fingerprints += [("tls_ja4:t13d1516h2_8daaf6152771", 55.0, len(members))]
    fingerprints += [(f"template:tpl-sweep-{k}", 40.0 - k, MEMBERS // 5) for k in range(5)]
    fingerprints += [(f"signup_cohort:{2993500 + k}", 12.0 - k / 10, 20) for k in range(28)]
    versions = []
    for v in range(24):  # the resolver publishes as the campaign grows
        n = min(len(members), 40 + v * 90)
        status = "new" if v == 0 else "growing" if n < len(members) else "active"
        versions.append(["cmp-5b0c7e21a9d4", status, None, None, T0 + datetime.timedelta(minutes=12),
                         T0 + datetime.timedelta(minutes=30 + v * 20), T0 + datetime.timedelta(minutes=30 + v * 20),
                         "critical", 400.0 + v * 60, members[:n], n, int(n * 0.97), fingerprints,
                         ["org-reseller"] if n == len(members) else [], 0, v])  # fmt: skip
    return versions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/case-page"))
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("needs Debian's chromium: apt-get install chromium")
    work = Path(tempfile.mkdtemp(prefix="case-page-"))
    handle = connect(f"chdb://{work / 'clickhouse'}")
    migrate.apply(handle, {"events_ttl_days": 3650})
    rows, members = _events(random.Random(28))
    handle.insert("events", rows, column_names=COLUMNS)
    handle.insert("campaigns", _campaign_versions(members),
                  column_names=["campaign_id", "status", "merged_into", "split_from", "first_seen", "last_seen",
                                "updated", "severity", "score", "members", "members_total", "shaped_members",
                                "fingerprints", "fronting_orgs", "kafka_partition", "kafka_offset"])  # fmt: skip
    handle.command("OPTIMIZE TABLE campaigns FINAL")  # as a server merges: the timeline must not care

    def ask(sql: str) -> tuple[list[str], list[list[Any]]]:
        result = handle.query(sql, settings={"readonly": 1})
        return list(result.column_names), [list(r) for r in result.result_rows]

    page = work / "case.html"
    write_case_page(load_case(Source(ask), "cmp-5b0c7e21a9d4"), page)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{page}: {page.stat().st_size:,} bytes, {len(rows):,} events, {len(members):,} members")
    # One screenshot down to the first long table, cut in two for the README.
    whole = work / "case.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={whole}", f"--window-size={WIDTH},{ABOVE_TABLES}", page.as_uri()],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    with Image.open(whole) as shot:
        for name, box in (("top", (0, 0, WIDTH, SPLIT)), ("charts", (0, SPLIT, WIDTH, ABOVE_TABLES))):
            shot.crop(box).save(args.out / f"{name}.png", optimize=True)
            print(args.out / f"{name}.png")


if __name__ == "__main__":
    main()
