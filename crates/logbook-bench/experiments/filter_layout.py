#!/usr/bin/env python3
"""Issue 17: what the account-first filter indexes cost per commit, against filter terms in FTS5.

A throwaway-sized model of Logbook's SQLite layout, to aim the layout change before making it
(BENCHMARKS.md, "Filter terms in FTS5, modelled"). It loads the same generated events twice, in
groups committed one after another in account order, as the writer does:

- "today": the clustered rows, `(account, created_at)`, `(account, actor, created_at)`,
  `(account, ip, created_at)`, `(account, action, created_at)`, `event_targets` and a contentless
  FTS5 table of the message's account-tagged tokens;
- "terms": the clustered rows and `(account, created_at)` only; the actor, address, action and
  targets become tokens of the same FTS5 document (behind `.`, in hexadecimal), and a small table
  keeps, per account and block of 1024 arrivals, the largest `created_at` of every event up to
  the block's end, so a newest-first walk in arrival order can stop exactly.

It prints, per layout, the WAL bytes and pages of each commit (each commit's WAL is
checkpointed away before the next, so the WAL's size is the commit's), the insert time per
event, and for the largest account the newest 50 events of a common and a rare actor: the
index's answer, and the walk's, which must be the same events; for the walk, how many rows it
read. Python's sqlite3 and its loop costs are the same for both layouts, so read the ratios.

    python3 crates/logbook-bench/experiments/filter_layout.py --events 2000000
"""

import argparse
import collections
import heapq
import json
import os
import random
import sqlite3
import struct
import tempfile
import time

ACTIONS = [
    "user.login", "server.reboot", "server.create", "server.delete", "server.resize",
    "firewall.rule.update", "dns.record.create", "ssh_key.create", "api_key.use",
    "database.backup", "volume.attach", "server.quarantine",
]
WORDS = ["logged", "in", "rebooted", "server", "created", "deleted", "resized", "updated",
         "firewall", "rule", "dns", "record", "added", "ssh", "key", "listed", "servers",
         "backed", "up", "database", "attached", "volume", "to", "from", "for", "on"]
BLOCK_BITS = 10


def account_tag(account_row):
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = []
    rest = account_row
    for _ in range(5):
        out.append(digits[rest % 36])
        rest //= 36
    return "".join(reversed(out))


def generate(event_count, account_count, seed):
    """Events in arrival order: (account_row, created_at µs, actor, ip bytes, action, targets, message, body)."""
    rng = random.Random(seed)
    weights = [1.0 / (rank ** 1.1) for rank in range(1, account_count + 1)]
    total = sum(weights)
    sizes = [max(1, int(event_count * weight / total)) for weight in weights]
    accounts = []
    for index, size in enumerate(sizes):
        accounts += [index + 1] * size
    rng.shuffle(accounts)
    accounts = accounts[:event_count]
    actor_pools = {a: max(3, sizes[a - 1] // 300) for a in range(1, account_count + 1)}
    ip_pools = {a: max(3, sizes[a - 1] // 60) for a in range(1, account_count + 1)}
    server_pools = {a: max(3, sizes[a - 1] // 500) for a in range(1, account_count + 1)}
    events = []
    for index, account_row in enumerate(accounts):
        # Events arrive a little after they happened, so slightly out of order: most within
        # 200 ms, one in a hundred up to ten minutes late (a retried or queued batch).
        lag = rng.randrange(0, 600_000_000) if rng.random() < 0.01 else rng.randrange(0, 200_000)
        created_at = 1_700_000_000_000_000 + index * 50 - lag
        actor_index = min(int(rng.paretovariate(1.2)) - 1, actor_pools[account_row] - 1)
        actor = f"user{actor_index}@acct{account_row}.example"
        ip_index = rng.randrange(ip_pools[account_row])
        ip = b"\x00" * 10 + b"\xff\xff" + struct.pack(">I", (account_row << 16 | ip_index) & 0xFFFFFFFF)
        action = ACTIONS[min(int(rng.expovariate(0.35)), len(ACTIONS) - 1)]
        targets = []
        if action.startswith("server") or action == "volume.attach":
            targets.append(f"srv-{rng.randrange(server_pools[account_row])}")
        if action == "ssh_key.create":
            targets.append(f"sshkey-{rng.randrange(65536)}")
        if action == "volume.attach":
            targets.append(f"vol-{rng.randrange(1, 60)}")
        words = [rng.choice(WORDS) for _ in range(rng.randrange(3, 8))]
        if action == "server.quarantine":
            words.append("quarantined")
        message = " ".join(words)
        body = ('{"action":"%s","actor":{"id":"%s","name":"Someone"},"message":"%s","targets":%s,'
                '"metadata":{"user_agent":"Mozilla/5.0 (X11; Linux x86_64)","method":"password+totp"},'
                '"context":{"location":"Frankfurt, Germany"},"outcome":"success"}') % (
                    action, actor, message, json.dumps(targets))
        events.append((account_row, created_at, actor, ip, action, targets, message, body))
    return events


TODAY_SCHEMA = """
CREATE TABLE events (event_row INTEGER PRIMARY KEY, account_row INTEGER NOT NULL,
    created_at INTEGER NOT NULL, action TEXT NOT NULL, actor_id TEXT, ip BLOB, body TEXT NOT NULL);
CREATE INDEX events_by_account_created ON events (account_row, created_at);
CREATE INDEX events_by_account_actor ON events (account_row, actor_id, created_at);
CREATE INDEX events_by_account_ip ON events (account_row, ip, created_at);
CREATE INDEX events_by_account_action ON events (account_row, action, created_at);
CREATE TABLE event_targets (account_row INTEGER NOT NULL, target_id TEXT NOT NULL,
    event_row INTEGER NOT NULL, PRIMARY KEY (account_row, target_id, event_row)) WITHOUT ROWID;
CREATE VIRTUAL TABLE events_fts USING fts5 (message, content = '',
    tokenize = "unicode61 remove_diacritics 0 categories 'L* N* M* P* S* C*'");
"""

TERMS_SCHEMA = """
CREATE TABLE events (event_row INTEGER PRIMARY KEY, account_row INTEGER NOT NULL,
    created_at INTEGER NOT NULL, action TEXT NOT NULL, actor_id TEXT, ip BLOB, body TEXT NOT NULL);
CREATE INDEX events_by_account_created ON events (account_row, created_at);
CREATE TABLE arrival_bounds (account_row INTEGER NOT NULL, block INTEGER NOT NULL,
    newest_created_at_so_far INTEGER NOT NULL, PRIMARY KEY (account_row, block)) WITHOUT ROWID;
CREATE VIRTUAL TABLE events_fts USING fts5 (message, content = '',
    tokenize = "unicode61 remove_diacritics 0 categories 'L* N* M* P* S* C*'");
"""


def text_document(tag, message):
    return " ".join(tag + word for word in message.split())


def actor_term(tag, actor):
    return ".%sa%s" % (tag, actor.encode().hex())


def load(path, layout, events, group_size):
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")
    connection.execute("PRAGMA wal_autocheckpoint = 0")
    connection.execute("PRAGMA cache_size = -65536")
    connection.executescript(TODAY_SCHEMA if layout == "today" else TERMS_SCHEMA)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    next_seq = {}
    newest_so_far = {}
    insert_seconds = 0.0
    wal_bytes = []
    for start in range(0, len(events), group_size):
        group = []
        for account_row, *rest in events[start:start + group_size]:
            seq = next_seq.get(account_row, 0)
            next_seq[account_row] = seq + 1
            group.append(((account_row << 40) | seq, account_row, seq, *rest))
        group.sort()
        began = time.perf_counter()
        connection.execute("BEGIN")
        bounds = {}
        for event_row, account_row, seq, created_at, actor, ip, action, targets, message, body in group:
            connection.execute(
                "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
                (event_row, account_row, created_at, action, actor, ip, body))
            tag = account_tag(account_row)
            document = text_document(tag, message)
            if layout == "today":
                for target in targets:
                    connection.execute(
                        "INSERT OR IGNORE INTO event_targets VALUES (?, ?, ?)",
                        (account_row, target, event_row))
            else:
                terms = [actor_term(tag, actor), ".%si%s" % (tag, ip.hex()),
                         ".%sx%s" % (tag, action.encode().hex())]
                terms += [".%st%s" % (tag, target.encode().hex()) for target in targets]
                document = document + " " + " ".join(terms)
                newest = max(newest_so_far.get(account_row, created_at), created_at)
                newest_so_far[account_row] = newest
                bounds[(account_row, seq >> BLOCK_BITS)] = newest
            connection.execute("INSERT INTO events_fts (rowid, message) VALUES (?, ?)",
                               (event_row, document))
        for (account_row, block), newest in bounds.items():
            connection.execute(
                "INSERT OR REPLACE INTO arrival_bounds VALUES (?, ?, ?)", (account_row, block, newest))
        connection.execute("COMMIT")
        insert_seconds += time.perf_counter() - began
        wal_bytes.append(os.path.getsize(path + "-wal"))
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return connection, insert_seconds, wal_bytes


def newest_by_index(connection, account_row, actor):
    return [row[0] for row in connection.execute(
        "SELECT event_row FROM events WHERE account_row = ? AND actor_id = ? "
        "ORDER BY created_at DESC, event_row DESC LIMIT 50", (account_row, actor))]


def newest_by_walk(connection, account_row, actor):
    """Arrival order newest first through FTS5, stopping once no older arrival can be newer."""
    term = actor_term(account_tag(account_row), actor)
    best = []  # min-heap of (created_at, event_row): the 50 newest so far
    rows_read = 0
    bound_cache = {}
    for (event_row,) in connection.execute(
            "SELECT rowid FROM events_fts WHERE events_fts MATCH ? ORDER BY rowid DESC",
            ('"%s"' % term,)):
        block = (event_row & ((1 << 40) - 1)) >> BLOCK_BITS
        if len(best) == 50:
            bound = bound_cache.get(block)
            if bound is None:
                bound = connection.execute(
                    "SELECT newest_created_at_so_far FROM arrival_bounds WHERE account_row = ? AND block = ?",
                    (account_row, block)).fetchone()[0]
                bound_cache[block] = bound
            if bound <= best[0][0]:
                break
        (created_at,) = connection.execute(
            "SELECT created_at FROM events WHERE event_row = ?", (event_row,)).fetchone()
        rows_read += 1
        item = (created_at, event_row)
        if len(best) < 50:
            heapq.heappush(best, item)
        elif item > best[0]:
            heapq.heapreplace(best, item)
    return [event_row for _, event_row in sorted(best, reverse=True)], rows_read


def timed(function, *arguments, runs=20):
    timings = []
    result = None
    for _ in range(runs):
        began = time.perf_counter()
        result = function(*arguments)
        timings.append(time.perf_counter() - began)
    timings.sort()
    return result, timings[len(timings) // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--group", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=20240601)
    arguments = parser.parse_args()
    events = generate(arguments.events, arguments.accounts, arguments.seed)
    largest = collections.Counter(event[0] for event in events).most_common(1)[0][0]
    actor_counts = {}
    for event in events:
        if event[0] == largest:
            actor_counts[event[2]] = actor_counts.get(event[2], 0) + 1
    common_actor = max(actor_counts, key=actor_counts.get)
    rare_actor = min(actor_counts, key=actor_counts.get)
    print(f"{len(events)} events over {arguments.accounts} accounts, groups of {arguments.group}; "
          f"largest account {largest} holds {sum(actor_counts.values())} events, "
          f"common actor {actor_counts[common_actor]} events, rare actor {actor_counts[rare_actor]}")
    with tempfile.TemporaryDirectory() as directory:
        answers = {}
        for layout in ("today", "terms"):
            path = os.path.join(directory, f"{layout}.db")
            connection, seconds, wal_bytes = load(path, layout, events, arguments.group)
            commits = len(wal_bytes)
            last_tenth = wal_bytes[-max(1, commits // 10):]
            print(f"{layout}: {seconds / len(events) * 1e6:.1f} µs per event inserted; WAL per commit "
                  f"mean {sum(wal_bytes) / commits / 1e6:.1f} MB ({sum(wal_bytes) / len(events):.0f} B per event), "
                  f"last tenth of the commits {sum(last_tenth) / len(last_tenth) / 1e6:.1f} MB "
                  f"({sum(last_tenth) / (len(last_tenth) * arguments.group):.0f} B per event); "
                  f"database {os.path.getsize(path) / len(events):.0f} B per event")
            for name, actor in (("common", common_actor), ("rare", rare_actor)):
                if layout == "today":
                    by_index, index_seconds = timed(newest_by_index, connection, largest, actor)
                    answers[name] = by_index
                    print(f"  newest 50 of the {name} actor by its index: {index_seconds * 1e3:.2f} ms")
                else:
                    (walked, rows_read), walk_seconds = timed(newest_by_walk, connection, largest, actor)
                    same = walked == answers[name]
                    print(f"  newest 50 of the {name} actor by the arrival walk: {walk_seconds * 1e3:.2f} ms, "
                          f"{rows_read} rows read, same events as the index: {same}")
            connection.close()


if __name__ == "__main__":
    main()
