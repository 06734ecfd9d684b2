"""Redshift node types: how many slices each compute node has.

A slice is a share of a compute node's CPU, memory and disk; every table's
rows are spread over all slices of the cluster, and a query works on all of
them in parallel. The count per node type is fixed by AWS ("default slices
per node": a classic resize keeps it, an elastic resize may move slices
between nodes but keeps the cluster's total: Redshift "aims to maintain the
same number of data slices", AWS Knowledge Center, "How does elastic resize
work in Amazon Redshift?"; see ``resize.py``).

Source: Amazon Redshift Management Guide, "Amazon Redshift provisioned
clusters", section "Node type details"
(https://docs.aws.amazon.com/redshift/latest/mgmt/working-with-clusters.html#rs-node-type-info),
read on 2026-11-30 in the copy published as
``awsdocs/amazon-redshift-management-guide`` ``doc_source/working-with-clusters.md``
(commit 0978500, the last one of that repository):

=============  ====  =========  ========================  ==========================
node type      vCPU  RAM (GiB)  default slices per node   nodes at CreateCluster
=============  ====  =========  ========================  ==========================
ra3.xlplus     4     32         2                         1 (single-node) or 2-16
ra3.4xlarge    12    96         4                         2-32
ra3.16xlarge   48    384        16                        2-128
dc2.large      2     15         2                         1-32
dc2.8xlarge    32    244        16                        2-128
=============  ====  =========  ========================  ==========================

``ra3.large`` (2 vCPU, 16 GiB, launched in 2024) is newer than that copy: its
2 slices per node are not confirmed from an AWS page here (the stored copy of
the live page could not be read in full). AWS stopped offering DC2 for new
clusters to some accounts in 2025 ("Invalid node type: dc2.large." from
CreateCluster, aws-samples/amazon-bedrock-agents-healthcare-lifesciences
issue #122); this stand-in still creates them, for the older material.
"""
from __future__ import annotations

#: node type -> slices per compute node.
SLICES_PER_NODE = {
    "ra3.large": 2,         # not in the dated copy above: see the module docstring
    "ra3.xlplus": 2,
    "ra3.4xlarge": 4,
    "ra3.16xlarge": 16,
    "dc2.large": 2,
    "dc2.8xlarge": 16,
}


def slices_per_node(node_type: str) -> int:
    """Slices of one compute node of ``node_type``; KeyError for a type Redshift does not have."""
    return SLICES_PER_NODE[node_type]
