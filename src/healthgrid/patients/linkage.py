"""Batch de-duplication of the master patient index with Splink 5 on DuckDB (in memory,
offline). Owns the batch model: the blocking rules, the comparisons (the same levels as the
online matcher's ``domain.compare_levels``, written as SQL), the unsupervised training, and
turning the trained model back into ``domain.DEFAULT_LEVELS``' shape for the online matcher.

Input: a pandas frame with ``record_id, name, name_pinyin, sex, birth_date, id_key, phone_key,
village_id, township_id`` (identifiers as blind indexes: only equality is used).

- Blocking (each rule an equality join): same ID; same birth date; same name key (toneless
  pinyin) and birth year; same phone; same name key and village. At a million residents
  that is ~18 million candidate pairs, 97% of them from the birth date (bench/linkage.py
  prints the counts). An ID, phone or name-and-year value shared by more than
  ``_MAX_BLOCK`` records (a placeholder phone, a default ID) blocks nothing, so one bad
  value cannot blow the candidate set up.
- Training: the prior from the ID rule with an assumed recall (``_ID_RECALL``); u by random
  sampling (3 million pairs, seeded), except the u of agreeing on the ID or the phone, too
  rare to sample, which is counted exactly over all pairs; m by EM on pairs blocked on
  birth date (sampled down to 5 million), then on name key and village (then the phone if
  either found nothing to learn from).
- A pair whose two records carry different IDs is dropped from the result: two valid,
  different ID numbers are two people (domain.MatchModel's rule), whatever the rest says.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
import pandas as pd
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from .domain import DEFAULT_LEVELS

INPUT_COLUMNS = ("record_id", "name", "name_pinyin", "sex", "birth_date", "id_key", "phone_key",
                 "village_id", "township_id")
FIELDS = tuple(DEFAULT_LEVELS)  # resident_id, name, birth_date, sex, phone, address
_MAX_BLOCK = 50
_ID_RECALL = 0.6  # assumed share of duplicate pairs in which both records carry the ID
_SEED = 20240917
_M_FLOOR = 1e-3  # see suggested_levels
_EM_MAX_PAIRS = 5e6  # EM learns as well from a 5-million-pair sample as from all of a block

# The records as Splink sees them: keys derived once, in SQL, so every comparison reads columns.
_PREPARE = """
CREATE OR REPLACE TABLE mpi_records AS
WITH raw AS (
    SELECT CAST(record_id AS BIGINT) AS record_id,
           NULLIF(trim(CAST(name AS VARCHAR)), '') AS name,
           NULLIF(replace(CAST(name_pinyin AS VARCHAR), ' ', ''), '') AS name_key,
           CASE WHEN CAST(sex AS VARCHAR) IN ('M', 'F') THEN CAST(sex AS VARCHAR) END AS sex,
           CAST(birth_date AS DATE) AS birth_date,
           NULLIF(CAST(id_key AS VARCHAR), '') AS id_key,
           NULLIF(CAST(phone_key AS VARCHAR), '') AS phone_key,
           CAST(village_id AS BIGINT) AS village_id,
           CAST(township_id AS BIGINT) AS township_id
    FROM input_frame)
SELECT *,
       NOT regexp_matches(coalesce(name, ''), '^[ -~]*$') AS name_cjk,
       strftime(birth_date, '%Y%m%d') AS birth_digits,
       year(birth_date) AS birth_year,
       CASE WHEN count(*) OVER (PARTITION BY id_key) <= {max_block} THEN id_key END AS id_block,
       CASE WHEN count(*) OVER (PARTITION BY phone_key) <= {max_block} THEN phone_key END AS phone_block,
       CASE WHEN count(*) OVER (PARTITION BY name_key, birth_year) <= {max_block} THEN name_key END
           AS name_year_block
FROM raw
"""


def _level(label: str, sql: str, *, null: bool = False) -> dict:
    return {"sql_condition": sql, "label_for_charts": label, **({"is_null_level": True} if null else {})}


def _equality(field_name: str, column: str, u_same: float | None = None) -> dict:
    same = _level("same", f"{column}_l = {column}_r")
    if u_same:
        same.update(u_probability=u_same, fix_u_probability=True)
    return {"output_column_name": field_name, "comparison_levels": [
        _level("null", f"{column}_l IS NULL OR {column}_r IS NULL", null=True), same, _level("different", "ELSE")]}


def comparisons(u_same_id: float | None = None, u_same_phone: float | None = None) -> list[dict]:
    """The six comparisons of ``domain.compare_levels``, level for level, in DuckDB SQL. The u
    of agreeing on the ID or the phone can be given (then it is not sampled)."""
    name = {"output_column_name": "name", "comparison_levels": [
        _level("null", "name_l IS NULL OR name_r IS NULL", null=True),
        _level("exact", "name_l = name_r"),
        _level("same_pinyin", "name_key_l = name_key_r"),
        _level("similar", "(name_cjk_l AND name_cjk_r AND length(name_l) = length(name_r)"
                          " AND levenshtein(name_l, name_r) <= 1)"
                          " OR jaro_winkler_similarity(name_key_l, name_key_r) >= 0.9"),
        _level("different", "ELSE")]}
    birth = {"output_column_name": "birth_date", "comparison_levels": [
        _level("null", "birth_date_l IS NULL OR birth_date_r IS NULL", null=True),
        _level("exact", "birth_date_l = birth_date_r"),
        _level("day_month_swapped", "year(birth_date_l) = year(birth_date_r)"
                                    " AND month(birth_date_l) = day(birth_date_r)"
                                    " AND day(birth_date_l) = month(birth_date_r)"),
        _level("close", "hamming(birth_digits_l, birth_digits_r) = 1"
                        " OR abs(date_diff('day', birth_date_l, birth_date_r)) <= 1"),
        _level("different", "ELSE")]}
    address = {"output_column_name": "address", "comparison_levels": [
        _level("null", "(village_id_l IS NULL OR village_id_r IS NULL OR village_id_l <> village_id_r)"
                       " AND (township_id_l IS NULL OR township_id_r IS NULL)", null=True),
        _level("same_village", "village_id_l = village_id_r"),
        _level("same_township", "township_id_l = township_id_r"),
        _level("different", "ELSE")]}
    return [_equality("resident_id", "id_key", u_same_id), name, birth, _equality("sex", "sex"),
            _equality("phone", "phone_key", u_same_phone), address]


_EM_BLOCKINGS = ((("birth_date",), {"birth_date"}), (("name_key", "village_id"), {"name", "address"}),
                 (("phone_key",), {"phone"}))

BLOCKING_RULES = {
    "id": block_on("id_block"),
    "birth_date": block_on("birth_date"),
    "name_key+birth_year": block_on("name_year_block", "birth_year"),
    "phone": block_on("phone_block"),
    "name_key+village": block_on("name_key", "village_id"),
}


@dataclass
class DedupeResult:
    pairs: pd.DataFrame  # record_id_l, record_id_r, match_probability, match_weight, one level column per field
    parameters: dict[str, dict[str, tuple[float | None, float | None]]]  # field -> level -> (m, u) as trained
    prior: float  # probability that two random records are the same person
    timings: dict[str, float]  # seconds: prepare, blocking, training, prediction, total
    blocked_pairs: dict[str, int]  # rule -> candidate pairs it adds to the rules before it
    link_threshold: float
    review_threshold: float
    n_records: int = 0
    notes: list[str] = field(default_factory=list)

    def links(self) -> pd.DataFrame:
        return self.pairs[self.pairs.match_probability >= self.link_threshold]


def dedupe(df: pd.DataFrame, *, link_threshold: float = 0.99, review_threshold: float = 0.5,
           max_pairs: float | None = None, progress: Callable[[str], None] | None = None) -> DedupeResult:
    """Score the candidate duplicate pairs of ``df`` and keep those at or above
    ``review_threshold``. ``max_pairs`` bounds the random pairs sampled for u (default 3
    million); ``progress`` is told what is being done."""
    say = progress or (lambda _message: None)
    n = len(df)
    timings: dict[str, float] = {}
    started = clock = time.perf_counter()
    linker, con = _linker(df[list(INPUT_COLUMNS)])
    try:
        if n < 2:
            return DedupeResult(_pairs(linker, None), _parameters(linker), 0.0, {"total": 0.0},
                                dict.fromkeys(BLOCKING_RULES, 0), link_threshold, review_threshold, n)
        timings["prepare"], clock = _lap(clock)
        say(f"blocking {n:,} records")
        blocked_pairs = _count_by_rule(con, linker.inference.compute_blocked_pairs_for_predict().physical_name)
        timings["blocking"], clock = _lap(clock)
        say(f"training ({sum(blocked_pairs.values()):,} candidate pairs)")
        notes = _train(linker, con, n, max_pairs, say)
        timings["training"], clock = _lap(clock)
        say("scoring")
        scored = linker.inference.predict(threshold_match_probability=review_threshold or None, warning_mode="never")
        pairs = _pairs(linker, scored.as_pandas_dataframe())
        timings["prediction"], clock = _lap(clock)
        timings["total"] = clock - started
        prior = linker.misc.save_model_to_json()["probability_two_random_records_match"]
        return DedupeResult(pairs, _parameters(linker), prior, timings, blocked_pairs, link_threshold,
                            review_threshold, n, notes)
    finally:
        con.close()


def blocking_analysis(df: pd.DataFrame) -> list[dict]:
    """Splink's count of the comparisons each blocking rule generates on ``df`` (exact, not
    sampled): per rule, the pairs it adds to the rules before it, and the running total."""
    linker, con = _linker(df[list(INPUT_COLUMNS)])
    try:
        records = linker.blocking_analysis.count_comparisons_from_blocking_rules(record_sample_proportion=1.0)
        return [{"rule": rule, "marginal": int(r["marginal_comparison_count"]),
                 "cumulative": int(r["cumulative_comparison_count"])}
                for rule, r in zip(BLOCKING_RULES, records, strict=True)]
    finally:
        con.close()


def _lap(clock: float) -> tuple[float, float]:
    now = time.perf_counter()
    return now - clock, now


def _linker(frame: pd.DataFrame) -> tuple[Linker, duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    # Two cores here; DuckDB would otherwise guess from the host, not from our CPU allowance.
    # (Each result is fetched: DuckDB 2 refuses new work while one is pending.)
    con.execute(f"SET threads = {len(os.sched_getaffinity(0))}").fetchall()
    con.register("input_frame", frame)
    con.execute(_PREPARE.format(max_block=_MAX_BLOCK)).fetchall()
    con.unregister("input_frame")
    n = len(frame)
    db_api = DuckDBAPI(con)
    # Agreeing on an ID or a phone is so rare that a few million sampled pairs see it a handful
    # of times, or never (Splink then assumes 1e-6, a hundred times too common at a million
    # records). Random sampling estimates the share of all pairs that agree: count it exactly.
    total = max(n * (n - 1) / 2, 1)
    u_id, u_phone = (_block_pairs(con, column) / total for column in ("id_key", "phone_key"))
    settings = SettingsCreator(
        link_type="dedupe_only", unique_id_column_name="record_id", comparisons=comparisons(u_id, u_phone),
        blocking_rules_to_generate_predictions=list(BLOCKING_RULES.values()),
        # Until the ID rule estimates it: about one record in fifty a duplicate.
        probability_two_random_records_match=min(0.5, 0.04 / max(n - 1, 1)),
        retain_matching_columns=True, retain_intermediate_calculation_columns=False)
    return Linker(db_api.register("mpi_records"), settings, log_level=None), con


def _count_by_rule(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, int]:
    # Splink tags each candidate with the first rule (0-based match_key) that produced it.
    counts = dict(con.execute(f"SELECT CAST(match_key AS INTEGER), count(*) FROM {table} GROUP BY 1").fetchall())
    return {rule: counts.get(i, 0) for i, rule in enumerate(BLOCKING_RULES)}


def _block_pairs(con: duckdb.DuckDBPyConnection, *columns: str) -> int:
    keys = ", ".join(columns)
    where = " AND ".join(f"{c} IS NOT NULL" for c in columns)
    sql = (f"SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM"
           f" (SELECT count(*) AS n FROM mpi_records WHERE {where} GROUP BY {keys})")
    return int(con.execute(sql).fetchall()[0][0])


def _train(linker: Linker, con: duckdb.DuckDBPyConnection, n: int, max_pairs: float | None,
           say: Callable[[str], None]) -> list[str]:
    notes = []
    total = n * (n - 1) / 2
    training = linker.training
    if _block_pairs(con, "id_block"):
        training.estimate_probability_two_random_records_match([BLOCKING_RULES["id"]], recall=_ID_RECALL)
    else:
        notes.append("no two records share an ID: prior assumed (one record in fifty a duplicate)")
    say("estimating u by random sampling")
    training.estimate_u_using_random_sampling(max_pairs=min(max_pairs or 3e6, max(total, 1)), seed=_SEED)
    # EM on blocked pairs, leaving out the fields it blocks on: birth date first (names, phone,
    # address, ID, sex), then name key and village (the birth date); the phone only when one
    # of those found nothing to learn from (a column all empty).
    learnt: set[str] = set()
    for columns, blocked_fields in _EM_BLOCKINGS:
        count = _block_pairs(con, *columns)
        if count < 10:
            notes.append(f"EM on {'+'.join(columns)} skipped: {count} pairs")
            continue
        say(f"EM on {'+'.join(columns)} ({count:,} pairs)")
        training.estimate_parameters_using_expectation_maximisation(
            block_on(*columns), max_pairs=_EM_MAX_PAIRS if count > _EM_MAX_PAIRS else None)
        learnt |= set(FIELDS) - blocked_fields
        if learnt == set(FIELDS):
            break
    return notes


def _level_values(model: dict) -> dict[str, dict[int, str]]:
    """field -> comparison vector value -> level label. Splink numbers the non-null levels
    from the most specific (highest) down to 0 and the null level -1."""
    values = {}
    for comparison in model["comparisons"]:
        levels = [cl["label_for_charts"] for cl in comparison["comparison_levels"] if not cl.get("is_null_level")]
        values[comparison["output_column_name"]] = {-1: "null", **{len(levels) - 1 - i: label
                                                                    for i, label in enumerate(levels)}}
    return values


def _pairs(linker: Linker, scored: pd.DataFrame | None) -> pd.DataFrame:
    values = _level_values(linker.misc.save_model_to_json())
    if scored is None:  # nothing to compare
        scored = pd.DataFrame(columns=["record_id_l", "record_id_r", "match_probability", "match_weight",
                                       *(f"gamma_{name}" for name in values)])
    pairs = scored[["record_id_l", "record_id_r", "match_probability", "match_weight"]].copy()
    for name, labels in values.items():
        pairs[name] = scored[f"gamma_{name}"].map(labels).astype("category")
    # Two different ID numbers are two people (domain.MatchModel): not a candidate at all.
    pairs = pairs[pairs["resident_id"] != "different"]
    return pairs.sort_values(["record_id_l", "record_id_r"], ignore_index=True)


def _parameters(linker: Linker) -> dict[str, dict[str, tuple[float, float]]]:
    params = {}
    for comparison in linker.misc.save_model_to_json()["comparisons"]:
        params[comparison["output_column_name"]] = {
            cl["label_for_charts"]: (cl.get("m_probability"), cl.get("u_probability"))
            for cl in comparison["comparison_levels"] if not cl.get("is_null_level")}
    return params


def suggested_levels(result: DedupeResult) -> dict[str, dict[str, tuple[float, float]]]:
    """The trained m and u in ``domain.DEFAULT_LEVELS``' shape, for refreshing the online
    matcher; a level the training could not estimate keeps its default. An m below
    ``_M_FLOOR`` is raised to it: EM finds no sex or ID slips between true pairs when there
    are none in the data, but one slip in a real registration must not veto a match."""
    levels = {}
    for field_name, defaults in DEFAULT_LEVELS.items():
        trained = result.parameters.get(field_name, {})
        levels[field_name] = {}
        for level, (m_default, u_default) in defaults.items():
            m, u = trained.get(level, (None, None))
            levels[field_name][level] = (max(_probability(m, m_default), _M_FLOOR), _probability(u, u_default))
    return levels


def _probability(value: float | None, default: float) -> float:
    if not isinstance(value, int | float) or math.isnan(value) or value <= 0:
        return default
    return float(f"{min(value, 1.0):.4g}")
