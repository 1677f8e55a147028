"""Writes a small MaxMind DB file with the real `mmdb-writer` package, for Logbook's IP database
tests. Reads one JSON object on standard input:

    {"path": "out.mmdb", "database_type": "GeoLite2-City",
     "records": [{"network": "203.0.113.0/25", "data": {...}}, ...]}

and writes an IPv6 database that holds IPv4 networks too (the layout GeoLite2 files have). Floats
are written as doubles, as MaxMind writes coordinates.
"""

import json
import sys

from mmdb_writer import MMDBWriter
from netaddr import IPSet


def main() -> None:
    spec = json.load(sys.stdin)
    writer = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type=spec["database_type"],
        languages=["en"],
        description="Logbook test database",
    )
    for record in spec["records"]:
        writer.insert_network(IPSet([record["network"]]), record["data"])
    writer.to_db_file(spec["path"])


if __name__ == "__main__":
    main()
