"""Record matching in the spirit of Lake Formation's FindMatches, with splink on DuckDB.

**What AWS's FindMatches is.** A Glue *machine learning transform*
(``CreateMLTransform`` with ``TransformType = FIND_MATCHES``) over a Data
Catalog table, with a ``PrimaryKeyColumnName``. It is *supervised*: you teach
it. ``StartMLLabelingSetGenerationTaskRun`` writes a labelling set (groups of
records FindMatches is unsure about) to S3; a person fills in a ``label``
column (rows with the same label in a ``labeling_set_id`` are the same
entity) and ``StartImportLabelsTaskRun`` uploads it; you repeat until
``StartMLEvaluationTaskRun`` ("Estimate quality") reports the precision,
recall, F1 and area under the precision-recall curve you need. Two knobs
steer it: ``PrecisionRecallTradeoff`` (0.0-1.0: higher favours precision,
fewer false matches; lower favours recall, fewer missed matches) and
``AccuracyCostTradeoff`` (higher searches more candidate pairs, costing more
DPU time, and mostly raises recall). A Glue ETL job then applies the trained
transform (``FindMatches.apply``) and writes every record with a
``match_id`` column: records with the same ``match_id`` are one entity. AWS
does not publish the model; it bills labelling and training by DPU-hour.

Sources: https://docs.aws.amazon.com/glue/latest/dg/machine-learning.html,
https://docs.aws.amazon.com/glue/latest/webapi/API_FindMatchesParameters.html,
https://docs.aws.amazon.com/glue/latest/dg/machine-learning-teaching.html,
https://docs.aws.amazon.com/glue/latest/dg/machine-learning-accuracy-cost-tradeoff.html

**What this module does instead.** The same question (which records are one
customer?) answered by `splink <https://github.com/moj-analytical-services/splink>`_,
a maintained open-source library that implements the *Fellegi-Sunter*
probabilistic model and runs as SQL on DuckDB:

1. **Comparisons.** Each pair of records is compared field by field into
   levels (names equal / swapped / Jaro-Winkler close / different; date of
   birth equal / a month apart / ...; e-mail equal / same user name / ...).
2. **u probabilities** (how often a level occurs between *different*
   people) are estimated by comparing random pairs of records, which are
   almost all non-matches (``estimate_u_using_random_sampling``, seeded).
3. **m probabilities** (how often a level occurs between records of the
   *same* person) are estimated by expectation maximisation over the pairs
   that share a date of birth, then over those that share a zip code
   (``estimate_parameters_using_expectation_maximisation``): each EM run
   learns every comparison except the one its blocking rule fixes.
4. **Prediction.** Candidate pairs (records sharing a name, a date of birth,
   an e-mail or a phone, or with first and last name swapped) get a match
   weight, the sum of ``log2(m/u)`` over their fields, and from it a match
   probability.
5. **Clustering.** Pairs at or above the threshold are edges; connected
   components are the entities. ``match_id`` is the smallest ``record_id``
   of each component, like FindMatches' output column.

The differences, honestly: splink learns *without labels* (labels are used
here only to score the result, :func:`evaluate`); FindMatches needs them to
learn at all. FindMatches picks the candidate pairs itself (the
accuracy/cost knob); here the blocking rules are written out. The threshold
plays the role of ``PrecisionRecallTradeoff``: raise it for precision, lower
it for recall, and :func:`evaluate` draws the curve. Formatting noise (case,
spaces, phone punctuation) is cleaned before matching, in SQL; FindMatches
learns around it.

Deterministic: the u sampling has a seed, EM and prediction are plain SQL,
so the same records give the same pairs, probabilities and clusters.
Bounded: the DuckDB database runs under ``limits.duckdb_config("findmatches")``, on one thread
(deterministic float sums; the data is small).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from localaws.core import limits

#: Columns :func:`find_matches` compares; the records may have more (kept in the output).
MATCH_COLUMNS = ("first_name", "last_name", "email", "phone", "dob", "zip")

#: Records cleaned before matching: case, spaces and phone punctuation are noise, not evidence.
CLEAN_SQL = """
SELECT * EXCLUDE (first_name, last_name, email, phone, dob, zip),
       nullif(lower(trim(first_name)), '')                   AS first_name,
       nullif(lower(trim(last_name)), '')                    AS last_name,
       nullif(lower(trim(email)), '')                        AS email,
       nullif(regexp_replace(phone, '[^0-9]', '', 'g'), '')  AS phone,
       nullif(trim(dob), '')                                 AS dob,
       nullif(trim(zip), '')                                 AS zip
FROM raw_records
"""


@dataclass
class Matches:
    """What :func:`find_matches` found.

    ``records``: the input with a ``match_id`` column (FindMatches' output
    shape); ``pairs``: every candidate pair scored (``record_id_l``,
    ``record_id_r``, ``match_weight``, ``match_probability``), the input of
    :func:`evaluate`; ``threshold``: the match probability the clusters were
    cut at; ``model``: the trained model as splink saves it (its settings,
    with ``m_probability`` and ``u_probability`` for every level of every
    comparison, and ``probability_two_random_records_match``).
    """
    records: pd.DataFrame
    pairs: pd.DataFrame
    threshold: float
    model: dict = field(repr=False)

    @property
    def clusters(self) -> dict[int, list[int]]:
        """``match_id`` -> the ``record_id``s of that entity, for entities of two records or more."""
        groups = self.records.groupby("match_id")["record_id"].apply(sorted)
        return {int(k): [int(i) for i in v] for k, v in groups.items() if len(v) > 1}


def _settings(id_column: str):
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name=id_column,
        comparisons=[
            cl.ForenameSurnameComparison("first_name", "last_name"),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.EmailComparison("email"),
            cl.LevenshteinAtThresholds("phone", 1),
            cl.ExactMatch("zip"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("last_name"), block_on("first_name"), block_on("dob"), block_on("email"),
            block_on("phone"), "l.first_name = r.last_name",
        ],
        retain_intermediate_calculation_columns=False,
    )


def _connection() -> duckdb.DuckDBPyConnection:
    """The database splink runs in: bounded by ``limits``, and on one thread, because threads add a
    column of floats in a varying order (EM's sums would differ in the last bits from run to run)."""
    return duckdb.connect(":memory:", config={**limits.duckdb_config("findmatches"), "threads": 1})


def find_matches(records, *, id_column: str = "record_id", threshold: float = 0.9, seed: int = 42,
                 max_pairs: int = 200_000) -> Matches:
    """Train a splink model on ``records``, score candidate pairs, and cluster them at ``threshold``.

    ``records``: a DataFrame or a list of dicts with ``id_column`` (unique)
    and the :data:`MATCH_COLUMNS` (missing values as None). ``seed`` fixes the
    random pairs the u probabilities are estimated from; ``max_pairs`` is
    how many such pairs to compare (splink's own default is 1e6; a few
    hundred thousand is plenty for a few thousand records).

    Raises ``ValueError`` for a missing column, a duplicate id or a
    threshold outside (0, 1].
    """
    from splink import DuckDBAPI, Linker, block_on

    frame = pd.DataFrame(records)
    missing = [c for c in (id_column, *MATCH_COLUMNS) if c not in frame.columns]
    if missing:
        raise ValueError(f"records lack the column(s) {', '.join(missing)} that find_matches compares")
    if frame[id_column].duplicated().any():
        dup = frame.loc[frame[id_column].duplicated(), id_column].iloc[0]
        raise ValueError(f"{id_column} must be unique: {dup!r} appears more than once")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold is a match probability in (0, 1], not {threshold}")

    con = _connection()
    try:
        con.register("raw_records", frame.astype({c: "string" for c in MATCH_COLUMNS}))
        cleaned = con.sql(CLEAN_SQL).df()
        db_api = DuckDBAPI(con)
        linker = Linker(db_api.register(cleaned), _settings(id_column), log_level=logging.ERROR)

        linker.training.estimate_probability_two_random_records_match(
            [block_on("email"), block_on("phone", "dob")], recall=0.6)
        linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
        linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
        linker.training.estimate_parameters_using_expectation_maximisation(block_on("zip"))

        scored = linker.inference.predict()
        pairs = (scored.as_pandas_dataframe()
                 [[f"{id_column}_l", f"{id_column}_r", "match_weight", "match_probability"]]
                 .sort_values([f"{id_column}_l", f"{id_column}_r"], ignore_index=True))
        clustered = linker.clustering.cluster_pairwise_predictions_at_threshold(
            scored, threshold_match_probability=threshold).as_pandas_dataframe()
        match_id = dict(zip(clustered[id_column], clustered["cluster_id"]))
        model = linker.misc.save_model_to_json()
    finally:
        con.close()
    out = frame.copy()
    out["match_id"] = out[id_column].map(lambda i: int(match_id.get(i, i)))
    return Matches(records=out, pairs=pairs, threshold=threshold, model=model)


def _components(ids, edges) -> dict:
    """Connected components by union-find: id -> the smallest id of its component."""
    parent = {i: i for i in ids}

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {i: root(i) for i in ids}


def cluster_pairs(ids, pairs: pd.DataFrame, threshold: float, id_column: str = "record_id") -> dict:
    """``id -> match_id`` for the pairs at or above ``threshold`` (what splink's clustering computes)."""
    kept = pairs[pairs["match_probability"] >= threshold]
    return _components(list(ids), zip(kept[f"{id_column}_l"], kept[f"{id_column}_r"]))


def evaluate(records, matches: Matches, thresholds=None, *, id_column: str = "record_id",
             label_column: str = "entity_id") -> pd.DataFrame:
    """Pairwise precision and recall of the clusters against the labels, per match threshold.

    For each threshold the scored pairs are clustered again; every pair of
    records in one cluster is a *predicted* match, every pair with the same
    ``label_column`` a *true* one. ``precision`` = correct predicted pairs /
    predicted pairs (1.0 when nothing is predicted), ``recall`` = correct
    predicted pairs / true pairs, ``f1`` their harmonic mean: the figures
    FindMatches' "Estimate quality" reports, here for a whole range of
    thresholds at once, ready to plot.
    """
    frame = pd.DataFrame(records)
    if thresholds is None:
        thresholds = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999]
    truth = _pairs_of(dict(zip(frame[id_column], frame[label_column])))
    rows = []
    for t in thresholds:
        predicted = _pairs_of(cluster_pairs(frame[id_column], matches.pairs, t, id_column))
        tp = len(predicted & truth)
        precision = tp / len(predicted) if predicted else 1.0
        recall = tp / len(truth) if truth else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({"threshold": t, "precision": precision, "recall": recall, "f1": f1,
                     "predicted_pairs": len(predicted), "true_pairs": len(truth), "correct_pairs": tp})
    return pd.DataFrame(rows)


def _pairs_of(group_of: dict) -> set[tuple]:
    """Every pair (smaller id first) of ids that share a group."""
    groups: dict = {}
    for i, g in group_of.items():
        groups.setdefault(g, []).append(i)
    pairs = set()
    for ids in groups.values():
        ids = sorted(ids)
        pairs.update((a, b) for n, a in enumerate(ids) for b in ids[n + 1:])
    return pairs
