"""FindMatches-style deduplication (LF-3): splink on DuckDB over seeded customer records with labels.

The floors below are what the seeded data (``customer_records()``, seed 7:
400 people, 773 records, 663 true duplicate pairs, households as near-miss
non-matches) gives at the chapter's threshold 0.9, with a small margin:
measured precision 0.966, recall 0.991.
"""
from __future__ import annotations

import pytest

from localaws.data.customers import customer_records, true_pairs
from localaws.lakeformation import findmatches

THRESHOLD = 0.9
PRECISION_FLOOR, RECALL_FLOOR = 0.93, 0.95


@pytest.fixture(scope="module")
def records():
    return customer_records()


@pytest.fixture(scope="module")
def matches(records):
    return findmatches.find_matches(records, threshold=THRESHOLD)


def test_generator_is_seeded_and_labelled(records):
    assert records == customer_records()
    assert records != customer_records(seed=8)
    ids = [r["record_id"] for r in records]
    assert ids == list(range(1, len(records) + 1))
    pairs = true_pairs(records)
    assert len(pairs) > 200 and all(a < b for a, b in pairs)
    kinds = {k for r in records for k in r["corruptions"].split(",") if k}
    assert kinds == {"typo", "swap", "missing", "format", "moved"}
    assert any(r["email"] is None for r in records) and any(r["phone"] and "(" in r["phone"] for r in records)


def test_precision_and_recall_above_floors_at_the_threshold(records, matches):
    row = findmatches.evaluate(records, matches, [THRESHOLD]).iloc[0]
    assert row.precision >= PRECISION_FLOOR, row.to_dict()
    assert row.recall >= RECALL_FLOOR, row.to_dict()
    assert row.true_pairs == len(true_pairs(records))


def test_threshold_trades_precision_for_recall(records, matches):
    curve = findmatches.evaluate(records, matches, [0.05, 0.5, 0.9, 0.999])
    low, high = curve.iloc[0], curve.iloc[-1]
    assert high.precision > low.precision        # a high threshold merges fewer housemates...
    assert low.recall > high.recall              # ...and misses more true duplicates
    assert list(curve.predicted_pairs) == sorted(curve.predicted_pairs, reverse=True)


def test_output_has_a_match_id_per_record_like_findmatches(records, matches):
    out = matches.records
    assert len(out) == len(records) and "match_id" in out.columns
    # splink's connected components and the sweep's union-find agree at the threshold
    ours = findmatches.cluster_pairs(out.record_id, matches.pairs, THRESHOLD)
    assert dict(zip(out.record_id, out.match_id)) == ours
    for match_id, members in matches.clusters.items():
        assert match_id == min(members)
    levels = [c["comparison_levels"] for c in matches.model["comparisons"]]
    assert all(any("m_probability" in level for level in c) for c in levels)


def test_deterministic_across_runs(records, matches):
    again = findmatches.find_matches(records, threshold=THRESHOLD)
    assert again.pairs.equals(matches.pairs)
    assert list(again.records.match_id) == list(matches.records.match_id)


@pytest.mark.parametrize("change, message", [
    (lambda rs: [{k: v for k, v in r.items() if k != "email"} for r in rs], "email"),
    (lambda rs: rs + [dict(rs[0])], "unique"),
])
def test_bad_records_are_refused(records, change, message):
    with pytest.raises(ValueError, match=message):
        findmatches.find_matches(change(records[:50]))


def test_bad_threshold_is_refused(records):
    with pytest.raises(ValueError, match="threshold"):
        findmatches.find_matches(records[:50], threshold=1.5)
