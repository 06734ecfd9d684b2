"""Where a step's Spark driver runs, and why losing that node fails the step.

On EMR, Spark runs on YARN. ``spark-submit`` is started on the primary
(master) node, and then:

- ``--deploy-mode client`` (the default): the **driver runs in the
  spark-submit process on the primary node**. Losing a core or task node
  costs executors, never the driver.
- ``--deploy-mode cluster``: the driver runs inside the YARN
  **ApplicationMaster** container, on a node YARN chooses. Losing that node
  loses the driver, and the application (the step) fails.

Where may YARN put an ApplicationMaster? That is the job of *node labels*
(yarn-site ``yarn.node-labels.enabled`` and
``yarn.node-labels.am.default-node-label-expression``):

- EMR 5.19-5.36: labels on, expression ``CORE``: AMs only on core nodes;
- EMR 6.x and 7.x: labels **off** by default: an AM may land on any core or
  task node, including a **Spot task node**;
- EMR 7.2 and later also accept ``ON_DEMAND``: AMs only on On-Demand nodes.

Set them with a ``yarn-site`` classification in RunJobFlow's
``Configurations``; :func:`am_label` reads it, :func:`driver_node` honours
it. Which eligible node YARN picks depends on which NodeManager has room
when the request is scheduled; the stand-in picks the most recently added
eligible node, so a run repeats.
"""
from __future__ import annotations

from . import errors

LABELS = ("CORE", "ON_DEMAND")


def am_label(configurations: list | None) -> str | None:
    """The node label expression ApplicationMasters must match, or None when labels are off.

    Reads the ``yarn-site`` classification of RunJobFlow's ``Configurations``.
    EMR 6.x/7.x default: labels off (None).
    """
    props = {}
    for c in configurations or []:
        if c.get("Classification") == "yarn-site":
            props.update(c.get("Properties") or {})
    if str(props.get("yarn.node-labels.enabled", "false")).lower() != "true":
        return None
    label = props.get("yarn.node-labels.am.default-node-label-expression", "")
    if label in ("", None):
        return None
    if label not in LABELS:
        raise errors.not_emulated("emr", "RunJobFlow",
                                  f"node label expression {label!r} (this stand-in knows CORE and ON_DEMAND)")
    return label


def eligible(node, label: str | None) -> bool:
    """May YARN start an ApplicationMaster on ``node`` (a CORE or TASK ``cluster.Node``)?"""
    if node.role == "MASTER" or node.state != "RUNNING":
        return False
    if label == "CORE":
        return node.role == "CORE"
    if label == "ON_DEMAND":
        return node.market == "ON_DEMAND"
    return True


def driver_node(run, deploy_mode: str):
    """The node whose loss kills the step's driver (``run``: an ``engine.ClusterRun``).

    Client mode: the primary node. Cluster mode: an eligible CORE/TASK node
    (None when no running node matches the label expression).
    """
    if deploy_mode != "cluster":
        return next(n for n in run.nodes.values() if n.role == "MASTER")
    candidates = [n for n in run.nodes.values() if eligible(n, run.am_label)]
    return candidates[-1] if candidates else None
