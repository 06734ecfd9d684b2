"""VPC Flow Logs: who talked to whom inside (and into) a VPC.

A *flow log* records IP traffic at the network interfaces (ENIs) of a VPC.
It does not capture packet contents: each *record* summarises one flow -- a
5-tuple (source address and port, destination address and port, protocol)
seen on one interface -- during one aggregation interval (at most 1 minute
on Nitro instances), with how many packets and bytes it carried, and
whether security groups and network ACLs let it through (``ACCEPT``) or
dropped it (``REJECT``). Typical questions: who are the top talkers, who
is scanning us, which rejected connections point at a misconfigured
security group.

The **default format** is version 2, fourteen space-separated fields::

    version account-id interface-id srcaddr dstaddr srcport dstport protocol
    packets bytes start end action log-status

``protocol`` is the IANA number (6 TCP, 17 UDP, 1 ICMP); ``start``/``end``
are Unix seconds; ``log-status`` is ``OK``, ``NODATA`` (no traffic on the
interface during the interval) or ``SKIPDATA`` (records were skipped); a
field that does not apply is ``-``. Delivered to S3, each file starts with a
header line naming the fields.

Sources (field layout, examples, S3 file naming):
https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html
https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-records-examples.html
https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-s3-path.html
"""
from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .logs import (BASE_TIME, DEFAULT_ACCOUNT_ID, DEFAULT_REGION, aws_logs_prefix,
                   compact_utc, documentation_ip, group_by_window, spread_times,
                   write_gzip)

#: The version 2 (default format) fields, in order.
VPC_FLOW_LOG_FIELDS = ("version", "account-id", "interface-id", "srcaddr", "dstaddr",
                       "srcport", "dstport", "protocol", "packets", "bytes",
                       "start", "end", "action", "log-status")

#: The VPC in the generated traffic (10.0.0.0/16): host -> (private IP, ENI id).
VPC_HOSTS = {
    "bastion": ("10.0.0.10", "eni-0a1b2c3d4e5f60010"),
    "web-1": ("10.0.1.11", "eni-0a1b2c3d4e5f60111"),
    "web-2": ("10.0.1.12", "eni-0a1b2c3d4e5f60112"),
    "app-1": ("10.0.2.21", "eni-0a1b2c3d4e5f60221"),
    "app-2": ("10.0.2.22", "eni-0a1b2c3d4e5f60222"),
    "db-1": ("10.0.3.31", "eni-0a1b2c3d4e5f60331"),
}
VPC_DNS_RESOLVER = "10.0.0.2"  # the Amazon-provided resolver: VPC base + 2

#: Outside addresses that probe the public hosts; every one of their flows is REJECTed.
PORT_SCANNERS = ("203.0.113.66", "203.0.113.77", "203.0.113.99")
#: The admin's home address, allowed to SSH into the bastion.
ADMIN_IP = "192.0.2.10"
#: Where app-2 ships its nightly backup: by far the biggest flows (the top talker).
BACKUP_DESTINATION = "203.0.113.200"

_SCANNED_PORTS = (22, 22, 22, 3389, 3389, 3389, 23, 445, 1433, 3306, 5900, 8080)
_TCP, _UDP, _ICMP = 6, 17, 1


def _ephemeral(rng: random.Random) -> int:
    return rng.randint(32768, 60999)


def _flow(host, src, dst, sport, dport, proto, packets, size, action="ACCEPT"):
    """One flow as seen on ``host``'s interface, without its times."""
    return {"eni": VPC_HOSTS[host][1], "src": src, "dst": dst, "sport": sport, "dport": dport,
            "proto": proto, "packets": packets, "bytes": packets * size, "action": action}


def _web(rng):
    host = rng.choice(("web-1", "web-2"))
    ip, client = VPC_HOSTS[host][0], documentation_ip(rng)
    port, client_port = rng.choice((443, 443, 443, 80)), _ephemeral(rng)
    if rng.random() < 0.5:  # request in
        return _flow(host, client, ip, client_port, port, _TCP, rng.randint(3, 40), rng.randint(60, 600))
    return _flow(host, ip, client, port, client_port, _TCP, rng.randint(4, 120), rng.randint(400, 1400))


def _app(rng):
    if rng.random() < 0.6:  # web tier calls the app tier, seen on the app ENI
        host = rng.choice(("app-1", "app-2"))
        src = VPC_HOSTS[rng.choice(("web-1", "web-2"))][0]
        return _flow(host, src, VPC_HOSTS[host][0], _ephemeral(rng), 8080, _TCP,
                     rng.randint(4, 60), rng.randint(100, 1200))
    src = VPC_HOSTS[rng.choice(("app-1", "app-2"))][0]  # app tier queries the database
    return _flow("db-1", src, VPC_HOSTS["db-1"][0], _ephemeral(rng), 5432, _TCP,
                 rng.randint(4, 80), rng.randint(80, 1400))


def _dns(rng):
    host = rng.choice(tuple(VPC_HOSTS))
    return _flow(host, VPC_HOSTS[host][0], VPC_DNS_RESOLVER, _ephemeral(rng), 53, _UDP,
                 rng.randint(1, 4), rng.randint(60, 120))


def _egress(rng):
    host = rng.choice(("app-1", "app-2", "bastion"))
    return _flow(host, VPC_HOSTS[host][0], documentation_ip(rng, ("198.51.100",)),
                 _ephemeral(rng), 443, _TCP, rng.randint(10, 400), rng.randint(200, 1400))


def _backup(rng):
    return _flow("app-2", VPC_HOSTS["app-2"][0], BACKUP_DESTINATION, _ephemeral(rng), 443,
                 _TCP, rng.randint(20_000, 90_000), rng.randint(1300, 1448))


def _icmp(rng):
    host = rng.choice(tuple(h for h in VPC_HOSTS if h != "bastion"))
    return _flow(host, VPC_HOSTS["bastion"][0], VPC_HOSTS[host][0], 0, 0, _ICMP,
                 rng.randint(1, 10), 84)


def _ssh_admin(rng):
    return _flow("bastion", ADMIN_IP, VPC_HOSTS["bastion"][0], _ephemeral(rng), 22, _TCP,
                 rng.randint(20, 300), rng.randint(60, 400))


def _scan(rng):
    host = rng.choice(("web-1", "web-2", "bastion"))
    return _flow(host, rng.choice(PORT_SCANNERS), VPC_HOSTS[host][0], _ephemeral(rng),
                 rng.choice(_SCANNED_PORTS), _TCP, rng.randint(1, 2), rng.choice((40, 44, 60)),
                 action="REJECT")


def _wrong_port(rng):
    # app-1 still tries MySQL's port on the PostgreSQL host: the security group says no.
    return _flow("db-1", VPC_HOSTS["app-1"][0], VPC_HOSTS["db-1"][0], _ephemeral(rng), 3306,
                 _TCP, rng.randint(1, 3), 60, action="REJECT")


_KINDS = ((_web, 40), (_app, 18), (_dns, 10), (_egress, 6), (_backup, 2), (_icmp, 4),
          (_ssh_admin, 2), (_scan, 15), (_wrong_port, 2), (None, 1))


def vpc_flow_log_lines(n: int = 5000, *, seed: int = 0, account_id: str = DEFAULT_ACCOUNT_ID,
                       start: datetime = BASE_TIME, duration: timedelta = timedelta(hours=1),
                       header: bool = True) -> list[str]:
    """``n`` default-format (version 2) flow log records, as text lines.

    The first line is the header (``version account-id ...``) unless
    ``header=False``; records follow in start-time order within
    ``[start, start + duration)``. The traffic is a small three-tier VPC
    (:data:`VPC_HOSTS`): internet clients reach web-1/web-2 on 443/80, web
    calls app on 8080, app calls db on 5432, everyone asks the DNS resolver,
    the bastion pings the fleet and accepts SSH from :data:`ADMIN_IP`.
    Planted answers for the exercises:

    - :data:`PORT_SCANNERS` probe 22, 3389 and other ports: always REJECT;
    - app-1 keeps trying port 3306 on db-1: REJECT (a configuration bug);
    - app-2's backup to :data:`BACKUP_DESTINATION` moves the most bytes;
    - about 1% of lines are ``NODATA``/``SKIPDATA`` records with ``-`` fields.
    """
    rng = random.Random(seed)
    kinds, weights = zip(*_KINDS)
    lines = [" ".join(VPC_FLOW_LOG_FIELDS)] if header else []
    for moment in spread_times(rng, n, start, duration):
        first = int(moment.timestamp())
        last = first + rng.randint(0, 59)  # Nitro: aggregation interval of at most 1 minute
        kind = rng.choices(kinds, weights)[0]
        if kind is None:
            eni = VPC_HOSTS[rng.choice(tuple(VPC_HOSTS))][1]
            status = "NODATA" if rng.random() < 0.8 else "SKIPDATA"
            lines.append(f"2 {account_id} {eni} - - - - - - - {first} {last} - {status}")
            continue
        f = kind(rng)
        lines.append(f"2 {account_id} {f['eni']} {f['src']} {f['dst']} {f['sport']} {f['dport']} "
                     f"{f['proto']} {f['packets']} {f['bytes']} {first} {last} {f['action']} OK")
    return lines


def write_vpc_flow_logs(directory, n: int = 5000, *, seed: int = 0,
                        account_id: str = DEFAULT_ACCOUNT_ID, region: str = DEFAULT_REGION,
                        flow_log_id: str = "fl-0f1e2d3c4b5a69788",
                        start: datetime = BASE_TIME,
                        duration: timedelta = timedelta(hours=1)) -> list[Path]:
    """Write flow logs under ``directory`` exactly as VPC Flow Logs delivers them to S3.

    One gzip file per 5-minute window, holding the records whose ``end``
    falls in that window, each starting with the header line::

        AWSLogs/<account>/vpcflowlogs/<region>/YYYY/MM/DD/
            <account>_vpcflowlogs_<region>_<flow-log-id>_<YYYYMMDDTHHmmZ>_<hash>.log.gz

    The stamp is the window start (a file stamped ``...T1620Z`` holds end
    times 16:20:00-16:24:59); ``<hash>`` is 8 hex digits of the content's
    SHA-256. Returns the paths, sorted. ``directory`` plays the bucket (plus
    any prefix): upload it with :func:`localaws.data.upload_directory`.
    """
    lines = vpc_flow_log_lines(n, seed=seed, account_id=account_id, start=start,
                               duration=duration, header=False)
    header = " ".join(VPC_FLOW_LOG_FIELDS)

    def end_time(line):
        return datetime.fromtimestamp(int(line.split(" ")[11]), tz=timezone.utc)

    paths = []
    for window, records in group_by_window(lines, end_time).items():
        text = "\n".join([header, *records]) + "\n"
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        name = (f"{account_id}_vpcflowlogs_{region}_{flow_log_id}_"
                f"{compact_utc(window)}_{digest}.log.gz")
        folder = Path(directory) / aws_logs_prefix(account_id, "vpcflowlogs", region, window)
        paths.append(write_gzip(folder / name, text))
    return sorted(paths)

