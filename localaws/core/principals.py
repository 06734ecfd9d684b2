"""Who is calling? Principals and their access keys.

On AWS every request is signed with an access key, and the key belongs to a
*principal*: an IAM user (``AKIA...`` keys), a role session obtained from
STS ``AssumeRole`` (``ASIA...`` keys plus a session token), or the account's
root user. Services decide what a request may do from that principal:
Lake Formation grants, QuickSight users, Redshift database users.

The local endpoint does the same bookkeeping: each request is attributed to
the principal of its access key, as moto's IAM and STS recorded them
(``iam.create_access_key``, ``sts.assume_role`` on the stack). A key that
neither created, such as the stack's own ``testing`` key or the private keys
a stand-in signs with to have its S3 reads counted, stands for the account's
root user: the administrator who set the stack up.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

ADMIN_KEY = "testing"          # any key works locally; these are not secrets
ADMIN_SECRET = "testing"


@dataclass(frozen=True)
class Principal:
    """An IAM identity: ``kind`` is ``root``, ``user`` or ``assumed-role``."""
    arn: str
    kind: str
    name: str
    role_arn: str | None = None       # for assumed-role sessions: the role's own ARN


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    session_token: str | None = None


class Principals:
    """Maps access keys to principals, and principals to keys for the stack's own clients."""

    def __init__(self, account_id: str, admin_client):
        self.account_id = account_id
        self.root = Principal(f"arn:aws:iam::{account_id}:root", "root", "root")
        self._admin_client = admin_client        # client(service) signed as the administrator
        self._lock = threading.Lock()
        self._by_key: dict[str, Principal] = {}
        self._credentials: dict[str, Credentials] = {}

    # -- request -> principal -------------------------------------------------
    def of_key(self, access_key: str | None) -> Principal:
        """The principal that ``access_key`` belongs to (root for keys IAM never issued)."""
        if not access_key or not access_key.startswith(("AKIA", "ASIA")):
            return self.root
        with self._lock:
            found = self._by_key.get(access_key)
        if found is None:
            found = self._look_up(access_key)
            if found is not None:
                with self._lock:
                    self._by_key[access_key] = found
        return found or self.root

    def _look_up(self, access_key: str) -> Principal | None:
        from moto.iam.models import iam_backends
        from moto.sts.models import sts_backends
        iam = iam_backends[self.account_id]["aws"]
        user = iam.get_user_from_access_key_id(access_key)
        if user is not None:
            return Principal(user.arn, "user", user.name)
        for session in sts_backends[self.account_id]["aws"].assumed_roles:
            if session.access_key_id == access_key:
                return Principal(session.arn, "assumed-role", session.session_name, session.role_arn)
        return None

    # -- principal -> credentials -------------------------------------------
    def credentials(self, principal: str | None) -> Credentials:
        """Keys that sign as ``principal``: None (the administrator), an IAM
        user's name or ARN (an access key is created for it once), or a
        role's ARN (assumed once, session ``localaws``)."""
        if principal is None or principal == self.root.arn:
            return Credentials(ADMIN_KEY, ADMIN_SECRET)
        with self._lock:
            known = self._credentials.get(principal)
        if known is not None:
            return known
        if ":role/" in principal:
            sts = self._admin_client("sts")
            creds = sts.assume_role(RoleArn=principal, RoleSessionName="localaws")["Credentials"]
            made = Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
        else:
            name = principal.rsplit("/", 1)[-1]
            iam = self._admin_client("iam")
            try:
                key = iam.create_access_key(UserName=name)["AccessKey"]
            except iam.exceptions.NoSuchEntityException:
                raise ValueError(f"No IAM user {name!r} in the stack: create it first "
                                 "(iam.create_user) or pass a role ARN") from None
            made = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
        with self._lock:
            self._credentials[principal] = made
        return made
