-- Issue 6, unfamiliar IPs: each account's actor history and known networks.
--
-- The writer flags an event `new_ip` the first time its actor is seen from its address, and
-- `new_network` when even the address's /24 (IPv4) or /48 (IPv6) is new for the actor (the rule,
-- including "an actor's first address is never new", is in logbook_core::unfamiliar_ip). It reads
-- and writes these tables in the events' transaction and writes them only when something is new;
-- the last time an address was used comes from the events themselves (events_by_account_actor).
ALTER TABLE events ADD COLUMN new_network INTEGER NOT NULL DEFAULT 0;

-- Every (actor, address) of an account, with the `created_at` of the first event seen from it.
-- `ip` is the 16-byte form of `events.ip`.
CREATE TABLE actor_addresses (
    account_row INTEGER NOT NULL,
    actor_id TEXT NOT NULL,
    ip BLOB NOT NULL,
    first_seen_at INTEGER NOT NULL,
    PRIMARY KEY (account_row, actor_id, ip)
) WITHOUT ROWID;

-- Every (actor, network) of an account. `network` is the leading bytes of the 16-byte address the
-- network prefix covers: 15 for IPv4 (a /24 of the mapped form), 6 for IPv6 (a /48).
CREATE TABLE actor_networks (
    account_row INTEGER NOT NULL,
    actor_id TEXT NOT NULL,
    network BLOB NOT NULL,
    PRIMARY KEY (account_row, actor_id, network)
) WITHOUT ROWID;

-- Events stored before this migration are history too, so an upgrade does not make every actor's
-- next address look familiar or new by accident.
INSERT INTO actor_addresses (account_row, actor_id, ip, first_seen_at)
    SELECT account_row, actor_id, ip, min(created_at) FROM events
    WHERE actor_id IS NOT NULL AND ip IS NOT NULL
    GROUP BY account_row, actor_id, ip;
INSERT INTO actor_networks (account_row, actor_id, network)
    SELECT DISTINCT account_row, actor_id,
        CASE WHEN substr(ip, 1, 12) = x'00000000000000000000FFFF' THEN substr(ip, 1, 15)
             ELSE substr(ip, 1, 6) END
    FROM actor_addresses;

-- Named networks of an account ("office" = 203.0.113.0/24), for `ip:NAME` and the page. Each block
-- is kept as its text and as the first and last 16-byte address, so `ip:NAME` is a range check.
CREATE TABLE known_networks (
    account_row INTEGER NOT NULL REFERENCES accounts (account_row),
    name TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (account_row, name)
) WITHOUT ROWID;
CREATE TABLE known_network_blocks (
    account_row INTEGER NOT NULL,
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    cidr TEXT NOT NULL,
    first_ip BLOB NOT NULL,
    last_ip BLOB NOT NULL,
    PRIMARY KEY (account_row, name, position)
) WITHOUT ROWID;
