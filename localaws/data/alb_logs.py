"""Application Load Balancer access logs: one line per HTTP request.

An Application Load Balancer (ALB) receives HTTP(S) requests and forwards
each to a *target* (an instance, container or IP, grouped in *target
groups*) chosen by its listener *rules*. With access logging on, every ALB
node writes, every 5 minutes, a gzip file listing each request it handled:
who asked (client), what (request line, user agent), where it went
(target), how long each leg took, and the status codes of both the load
balancer (``elb_status_code``) and the target (``target_status_code``).
That split answers the classic question "is it the load balancer or my
app?": a 502/504 with target status ``-`` means the target never answered.

Each entry is one line of space-separated fields, in this documented order
(quoted fields may contain spaces)::

    type time elb client:port target:port request_processing_time
    target_processing_time response_processing_time elb_status_code
    target_status_code received_bytes sent_bytes "request" "user_agent"
    ssl_cipher ssl_protocol target_group_arn "trace_id" "domain_name"
    "chosen_cert_arn" matched_rule_priority request_creation_time
    "actions_executed" "redirect_url" "error_reason" "target:port_list"
    "target_status_code_list" "classification" "classification_reason"
    conn_trace_id

A field that does not apply is ``-``; the three processing times are ``-1``
when the load balancer could not dispatch the request to a target or the
target did not answer (redirects, timeouts, connection errors). AWS appends
new fields at the end, so parsers must ignore extra trailing fields.

Sources (fields, file naming, and the Athena table whose regular
expression the tests use to parse every generated line):
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-access-logs.html
https://docs.aws.amazon.com/athena/latest/ug/create-alb-access-logs-table.html
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .logs import (BASE_TIME, DEFAULT_ACCOUNT_ID, DEFAULT_REGION, DELIVERY_INTERVAL,
                   aws_logs_prefix, compact_utc, documentation_ip, group_by_window, iso_utc,
                   random_hex, random_string, spread_times, write_gzip)

LOAD_BALANCER_NAME = "shop-alb"
LOAD_BALANCER_ID = "7f3c2a1b9d8e6f50"
DOMAIN = "shop.example.com"
#: The ALB's two nodes (one per Availability Zone); each delivers its own files.
ALB_NODE_IPS = ("203.0.113.10", "203.0.113.11")
#: Target groups and their targets (ip:port). The API target app-2 is sick.
TARGET_GROUPS = {
    "web-tg": ("10.0.1.11:8080", "10.0.1.12:8080"),
    "api-tg": ("10.0.2.21:8080", "10.0.2.22:8080"),
}
FAILING_TARGET = "10.0.2.22:8080"
_TG_IDS = {"web-tg": "1a2b3c4d5e6f7081", "api-tg": "9f8e7d6c5b4a3921"}
_RULE_PRIORITY = {"api-tg": 10, "web-tg": 0}  # /api/* rule; everything else: default action (0)
_CERT_ID = "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"

_WEB_PATHS = ("/", "/", "/products", "/products/{id}", "/products/{id}", "/cart",
              "/static/app.js", "/static/style.css", "/images/{id}.jpg")
_API_PATHS = (("GET", "/api/v1/products"), ("GET", "/api/v1/products/{id}"),
              ("GET", "/api/v1/cart"), ("POST", "/api/v1/cart"), ("POST", "/api/v1/checkout"),
              ("GET", "/api/v1/search?q=shoes&page=1"))
_PROBE_PATHS = ("/wp-login.php", "/.env", "/admin", "/phpmyadmin/", "/.git/config")
_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "ShopApp/3.2.1 (Android 15)",
    "python-requests/2.32.3",
    "curl/8.9.1",
)
_PROBE_AGENT = "Mozilla/5.0 zgrab/0.x"
_TLS = (("ECDHE-RSA-AES128-GCM-SHA256", "TLSv1.2"), ("TLS_AES_128_GCM_SHA256", "TLSv1.3"))


def _target_group_arn(account_id: str, region: str, group: str) -> str:
    return f"arn:aws:elasticloadbalancing:{region}:{account_id}:targetgroup/{group}/{_TG_IDS[group]}"


def _seconds(value: float) -> str:
    return "-1" if value < 0 else f"{value:.3f}"


def _pick_request(rng: random.Random) -> dict:
    """What the client asks for, and which target group the rules pick."""
    roll = rng.random()
    if roll < 0.02:
        return {"method": "GET", "path": rng.choice(_PROBE_PATHS), "group": "web-tg", "probe": True}
    if roll < 0.40:
        method, path = rng.choice(_API_PATHS)
        return {"method": method, "path": path.replace("{id}", str(rng.randint(1, 500))),
                "group": "api-tg", "probe": False}
    return {"method": "GET", "path": rng.choice(_WEB_PATHS).replace("{id}", str(rng.randint(1, 500))),
            "group": "web-tg", "probe": False}


def _outcome(rng: random.Random, request: dict, target: str) -> dict:
    """Status codes, timings and sizes for a request that reached ``target``."""
    out = {"elb": 200, "target": "200", "rpt": rng.uniform(0, 0.002),
           "tpt": rng.lognormvariate(-3.3, 0.7), "spt": rng.uniform(0, 0.001),
           "sent": rng.randint(400, 60_000)}
    if request["probe"]:
        out.update(elb=404, target="404", sent=rng.randint(150, 400))
    elif target == FAILING_TARGET and rng.random() < 0.3:
        kind = rng.choices(("500", "502", "504"), (5, 3, 2))[0]
        if kind == "500":  # the application answered with an error
            out.update(elb=500, target="500", sent=rng.randint(150, 300))
        elif kind == "502":  # the target reset the connection: no response at all
            out.update(elb=502, target="-", tpt=-1, spt=-1, sent=rng.randint(150, 300))
        else:  # the target did not answer before the idle timeout (60 s)
            out.update(elb=504, target="-", tpt=-1, spt=-1, sent=rng.randint(150, 300), timeout=60.0)
    elif rng.random() < 0.002:
        out.update(elb=500, target="500", sent=rng.randint(150, 300))
    elif request["group"] == "api-tg" and request["path"] == "/api/v1/cart" and rng.random() < 0.08:
        out.update(elb=401, target="401", sent=rng.randint(150, 300))
    elif request["path"].startswith("/static") and rng.random() < 0.3:
        out.update(elb=304, target="304", sent=rng.randint(150, 300))
    return out


def _line(rng: random.Random, moment: datetime, account_id: str, region: str) -> str:
    listener = rng.choices(("https", "h2", "http"), (80, 12, 8))[0]
    request = _pick_request(rng)
    client = documentation_ip(rng)
    agent = _PROBE_AGENT if request["probe"] else rng.choice(_USER_AGENTS)
    port = 80 if listener == "http" else 443
    scheme = "http" if listener == "http" else "https"
    version = "HTTP/2.0" if listener == "h2" else "HTTP/1.1"
    request_line = f"{request['method']} {scheme}://{DOMAIN}:{port}{request['path']} {version}"
    received = rng.randint(200, 1500) + (rng.randint(100, 3000) if request["method"] == "POST" else 0)
    trace = f"Root=1-{int(moment.timestamp()):08x}-{random_hex(rng, 24)}"
    if listener == "http":  # the port-80 listener only redirects to HTTPS
        outcome = {"elb": 301, "target": "-", "rpt": -1, "tpt": -1, "spt": -1, "sent": rng.randint(200, 300)}
        target, group_arn, priority = "-", "-", "0"
        actions, redirect = "redirect", f"https://{DOMAIN}:443{request['path']}"
        cipher, protocol, domain, cert = "-", "-", "-", "-"
    else:
        target = rng.choice(TARGET_GROUPS[request["group"]])
        outcome = _outcome(rng, request, target)
        group_arn = _target_group_arn(account_id, region, request["group"])
        priority = str(_RULE_PRIORITY[request["group"]])
        actions, redirect = "forward", "-"
        cipher, protocol = rng.choice(_TLS)
        domain = DOMAIN
        cert = f"arn:aws:acm:{region}:{account_id}:certificate/{_CERT_ID}"
    elapsed = outcome.get("timeout", sum(max(outcome[k], 0) for k in ("rpt", "tpt", "spt")))
    created = moment - timedelta(seconds=elapsed)
    target_status = outcome["target"]
    fields = [
        listener, iso_utc(moment, micros=True),
        f"app/{LOAD_BALANCER_NAME}/{LOAD_BALANCER_ID}",
        f"{client}:{rng.randint(1024, 65535)}", target,
        _seconds(outcome["rpt"]), _seconds(outcome["tpt"]), _seconds(outcome["spt"]),
        str(outcome["elb"]), target_status, str(received), str(outcome["sent"]),
        f'"{request_line}"', f'"{agent}"', cipher, protocol, group_arn,
        f'"{trace}"', f'"{domain}"', f'"{cert}"', priority, iso_utc(created, micros=True),
        f'"{actions}"', f'"{redirect}"', '"-"', f'"{target}"', f'"{target_status}"',
        '"-"', '"-"', f"TID_{random_hex(rng, 32)}",
    ]
    return " ".join(fields)


def alb_access_log_lines(n: int = 5000, *, seed: int = 0, account_id: str = DEFAULT_ACCOUNT_ID,
                         region: str = DEFAULT_REGION, start: datetime = BASE_TIME,
                         duration: timedelta = timedelta(hours=1)) -> list[str]:
    """``n`` ALB access log entries for the load balancer ``shop-alb``, in time order.

    Traffic: ``https`` (and some ``h2``) requests to ``shop.example.com``;
    ``/api/*`` goes to target group ``api-tg`` (rule priority 10), the rest
    to ``web-tg`` (default action, priority 0); plain ``http`` requests are
    redirected (301, no target, processing times ``-1``). Planted answers:

    - :data:`FAILING_TARGET` (10.0.2.22:8080 in ``api-tg``) fails about 30% of
      its requests: 500 from the application, 502 when it resets the
      connection and 504 when it times out (target status ``-``, target and
      response processing times ``-1``) -- "5xx by target" singles it out;
    - scanners probing ``/wp-login.php``, ``/.env``... get 404s;
    - ``/api/v1/cart`` sometimes answers 401.
    """
    rng = random.Random(seed)
    return [_line(rng, moment, account_id, region) for moment in spread_times(rng, n, start, duration)]


def write_alb_access_logs(directory, n: int = 5000, *, seed: int = 0,
                          account_id: str = DEFAULT_ACCOUNT_ID, region: str = DEFAULT_REGION,
                          start: datetime = BASE_TIME,
                          duration: timedelta = timedelta(hours=1)) -> list[Path]:
    """Write access logs under ``directory`` as Elastic Load Balancing delivers them to S3.

    Each of the two load balancer nodes (:data:`ALB_NODE_IPS`) writes one
    gzip file per 5-minute interval::

        AWSLogs/<account>/elasticloadbalancing/<region>/YYYY/MM/DD/
            <account>_elasticloadbalancing_<region>_app.<lb-name>.<lb-id>_<end-time>_<node-ip>_<random>.log.gz

    ``<end-time>`` is the end of the interval (``...T0005Z`` holds requests
    from 00:00 to 00:05); the folder date is that of the end time. Returns
    the paths, sorted.
    """
    lines = alb_access_log_lines(n, seed=seed, account_id=account_id, region=region,
                                 start=start, duration=duration)
    rng = random.Random(f"alb-files-{seed}")
    tagged = [(rng.choice(ALB_NODE_IPS), line) for line in lines]  # which node served it

    def response_time(item):
        return datetime.strptime(item[1].split(" ")[1], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)

    paths = []
    for window, items in group_by_window(tagged, response_time).items():
        end = window + DELIVERY_INTERVAL
        folder = Path(directory) / aws_logs_prefix(account_id, "elasticloadbalancing", region, end)
        for node in ALB_NODE_IPS:
            entries = [line for ip, line in items if ip == node]
            if not entries:
                continue
            name = (f"{account_id}_elasticloadbalancing_{region}_app.{LOAD_BALANCER_NAME}."
                    f"{LOAD_BALANCER_ID}_{compact_utc(end)}_{node}_"
                    f"{random_string(rng, 8, 'abcdefghijklmnopqrstuvwxyz0123456789')}.log.gz")
            paths.append(write_gzip(folder / name, "\n".join(entries) + "\n"))
    return sorted(paths)
