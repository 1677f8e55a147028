-- Issue 6, unfamiliar IPs: each account's actor history and known networks.
--
-- The writer flags an event `new_ip` the first time its actor is seen from its address, and
-- `new_network` when even the address's /24 (IPv4) or /48 (IPv6) is new for the actor (the rule,
-- including "an actor's first address is never new", is in logbook_core::unfamiliar_ip). It reads
-- these tables under the account row locks it already takes (`FOR UPDATE`), so two nodes never
-- both call the same address new, and writes them only when something is new; the last time an
-- address was used comes from the events themselves (events_by_account_actor).
ALTER TABLE events ADD COLUMN new_network boolean NOT NULL DEFAULT false;

-- Every (actor, address) of an account, with the `created_at` of the first event seen from it.
-- `ip` is the 16-byte form of `events.ip`.
CREATE TABLE actor_addresses (
    account_row bigint NOT NULL,
    actor_id text COLLATE "C" NOT NULL,
    ip bytea NOT NULL,
    first_seen_at bigint NOT NULL,
    PRIMARY KEY (account_row, actor_id, ip)
);

-- Every (actor, network) of an account. `network` is the leading bytes of the 16-byte address the
-- network prefix covers: 15 for IPv4 (a /24 of the mapped form), 6 for IPv6 (a /48).
CREATE TABLE actor_networks (
    account_row bigint NOT NULL,
    actor_id text COLLATE "C" NOT NULL,
    network bytea NOT NULL,
    PRIMARY KEY (account_row, actor_id, network)
);

-- Events stored before this migration are history too. The row-level policies would hide every
-- event from this statement when the migrating role is neither superuser nor BYPASSRLS.
SET LOCAL logbook.all_accounts = 'on';
INSERT INTO actor_addresses (account_row, actor_id, ip, first_seen_at)
    SELECT account_row, actor_id, ip, min(created_at) FROM events
    WHERE actor_id IS NOT NULL AND ip IS NOT NULL
    GROUP BY account_row, actor_id, ip;
INSERT INTO actor_networks (account_row, actor_id, network)
    SELECT DISTINCT account_row, actor_id,
        CASE WHEN substring(ip from 1 for 12) = '\x00000000000000000000ffff'::bytea
             THEN substring(ip from 1 for 15) ELSE substring(ip from 1 for 6) END
    FROM actor_addresses;

-- Named networks of an account ("office" = 203.0.113.0/24), for `ip:NAME` and the page. Each block
-- is kept as its text and as the first and last 16-byte address, so `ip:NAME` is a range check.
CREATE TABLE known_networks (
    account_row bigint NOT NULL REFERENCES accounts (account_row),
    name text COLLATE "C" NOT NULL,
    updated_at bigint NOT NULL,
    PRIMARY KEY (account_row, name)
);
CREATE TABLE known_network_blocks (
    account_row bigint NOT NULL,
    name text COLLATE "C" NOT NULL,
    position integer NOT NULL,
    cidr text NOT NULL,
    first_ip bytea NOT NULL,
    last_ip bytea NOT NULL,
    PRIMARY KEY (account_row, name, position)
);
