"""A minimal IAM policy evaluator: may this principal call ``action`` on ``resource``?

The local stack lets every signed request through: IAM policies are recorded
by moto and enforced nowhere. One place needs them: Lake Formation's model
says that data in a *registered* S3 location is read through integrated
engines (Athena, Glue, Redshift Spectrum), and a direct ``s3:GetObject`` on it
works only for a principal whose IAM policies allow it. This module answers
that one question from moto's IAM records, read through the IAM API
(``ctx.client("iam")``, as the administrator).

What it evaluates (IAM's policy evaluation logic, reduced):

- the identity policies of the principal: for a user, its inline policies,
  its attached managed policies, and the inline and attached policies of
  every group it belongs to; for a role (or an assumed-role session of it),
  the role's inline and attached policies;
- ``Statement`` entries with ``Effect``, ``Action`` / ``NotAction`` and
  ``Resource`` / ``NotResource``; ``*`` and ``?`` wildcards (actions match
  case-insensitively, resources case-sensitively);
- an explicit ``Deny`` wins over any ``Allow``; no ``Allow`` means an
  implicit deny.

What it ignores (say so when teaching): ``Condition`` blocks (a statement
with a condition is treated as if the condition held), resource-based
policies (bucket policies), permissions boundaries, session policies, SCPs
and RCPs. Source of the rules:
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
"""
from __future__ import annotations

import json
import re
from typing import Iterable
from urllib.parse import unquote


def _pattern(text: str, case: bool) -> re.Pattern:
    """IAM wildcards: ``*`` any run of characters, ``?`` one character, nothing else special."""
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in text)
    return re.compile(f"^{regex}$", 0 if case else re.IGNORECASE)


def matches(pattern: str, value: str, *, case: bool = True) -> bool:
    """Does IAM pattern ``pattern`` (``*``/``?`` wildcards) match ``value``?"""
    return bool(_pattern(pattern, case).match(value))


def _listed(value) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _statement_applies(statement: dict, action: str, resource: str) -> bool:
    if "Action" in statement:
        if not any(matches(a, action, case=False) for a in _listed(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(matches(a, action, case=False) for a in _listed(statement["NotAction"])):
            return False
    else:
        return False
    if "Resource" in statement:
        return any(matches(r, resource) for r in _listed(statement["Resource"]))
    if "NotResource" in statement:
        return not any(matches(r, resource) for r in _listed(statement["NotResource"]))
    return False


def evaluate(documents: Iterable[dict], action: str, resource: str) -> str:
    """``"Allow"``, ``"Deny"`` (explicit) or ``"ImplicitDeny"`` for ``action`` on ``resource``."""
    allowed = False
    for document in documents:
        statements = document.get("Statement", [])
        if isinstance(statements, dict):
            statements = [statements]
        for statement in statements:
            if not _statement_applies(statement, action, resource):
                continue
            if statement.get("Effect") == "Deny":
                return "Deny"
            if statement.get("Effect") == "Allow":
                allowed = True
    return "Allow" if allowed else "ImplicitDeny"


def _document(raw) -> dict:
    """A policy document as the IAM API returns it (a dict, or URL-encoded JSON text)."""
    if isinstance(raw, dict):
        return raw
    text = unquote(raw)
    return json.loads(text)


def _managed(iam, attached: list[dict]) -> list[dict]:
    docs = []
    for policy in attached:
        arn = policy["PolicyArn"]
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        docs.append(_document(iam.get_policy_version(PolicyArn=arn, VersionId=version)
                              ["PolicyVersion"]["Document"]))
    return docs


def identity_policies(iam, arn: str) -> list[dict]:
    """Every identity policy document that applies to the IAM user or role ``arn``
    (an ``assumed-role`` session ARN counts as its role). ``[]`` for anything else."""
    kind, _, rest = arn.split(":", 5)[-1].partition("/")
    if kind == "assumed-role":
        kind, rest = "role", rest.split("/")[0]
    name = rest.rsplit("/", 1)[-1]
    docs: list[dict] = []
    try:
        if kind == "user":
            for policy in iam.list_user_policies(UserName=name)["PolicyNames"]:
                docs.append(_document(iam.get_user_policy(UserName=name, PolicyName=policy)["PolicyDocument"]))
            docs += _managed(iam, iam.list_attached_user_policies(UserName=name)["AttachedPolicies"])
            for group in iam.list_groups_for_user(UserName=name)["Groups"]:
                g = group["GroupName"]
                for policy in iam.list_group_policies(GroupName=g)["PolicyNames"]:
                    docs.append(_document(iam.get_group_policy(GroupName=g, PolicyName=policy)["PolicyDocument"]))
                docs += _managed(iam, iam.list_attached_group_policies(GroupName=g)["AttachedPolicies"])
        elif kind == "role":
            for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
                docs.append(_document(iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]))
            docs += _managed(iam, iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"])
    except iam.exceptions.NoSuchEntityException:
        return []
    return docs


def allowed(iam, arn: str, action: str, resource: str) -> bool:
    """True when the identity policies of ``arn`` allow ``action`` on ``resource`` and no policy denies it."""
    return evaluate(identity_policies(iam, arn), action, resource) == "Allow"


__all__ = ["allowed", "evaluate", "identity_policies", "matches"]
