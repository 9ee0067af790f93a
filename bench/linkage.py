"""Batch de-duplication of the patient index: our Splink pipeline against a standard
recordlinkage configuration, on the synthetic truth set, in the same process.

For each size (``--records 100000 1000000`` by default; ``--records 20000`` for a quick run):

1. build the truth set (``patients.truth``: ~10% corrupted duplicates with known true pairs);
2. count the candidate pairs of each blocking rule with Splink's blocking analysis;
3. run ``patients.linkage.dedupe`` (Splink 5 on DuckDB) and score its pairs against the true
   pairs at the link threshold (0.99) and the review threshold (0.5): pairwise precision,
   recall, F1;
4. run the baseline, the recordlinkage toolkit as its documentation sets it up: an
   ``Index`` blocking on birth date, blocking on phone and a sorted neighbourhood on the
   pinyin (window 3); ``Compare`` with Jaro-Winkler ≥ 0.85 on the pinyin and exact on sex,
   birth date, phone, village and ID; the unsupervised ``ECMClassifier``.

The figures to compare across machines are the ratio of run times (ours / baseline) and the
two F1 scores. Peak memory is the process's (``ru_maxrss``), so it grows across sizes.
"""

from __future__ import annotations

import argparse
import gc
import logging
import resource
import time

import numpy as np
import pandas as pd
import recordlinkage

from healthgrid.patients import linkage
from healthgrid.patients.truth import evaluate, true_pairs, truth_set

# Above this many candidate pairs the baseline's sorted neighbourhood is run within birth
# years instead (recordlinkage holds every pair and its features in memory, ~200 B a pair).
BASELINE_MAX_PAIRS = 80_000_000


def sorted_neighbourhood_pairs(values: pd.Series, window: int = 3) -> int:
    """The pairs recordlinkage's sorted neighbourhood makes, counted without making them:
    all pairs within a key, plus those between keys up to window // 2 ranks apart."""
    counts = values.dropna().value_counts().sort_index().to_numpy(dtype=np.int64)
    total = int((counts * (counts - 1) // 2).sum())
    for lag in range(1, window // 2 + 1):
        total += int((counts[:-lag] * counts[lag:]).sum())
    return total


def block_pairs(values: pd.Series) -> int:
    counts = values.dropna().value_counts().to_numpy(dtype=np.int64)
    return int((counts * (counts - 1) // 2).sum())


def baseline(df: pd.DataFrame, truth: set) -> dict:
    # Only the compared columns: at a million records the baseline needs ~20 GB as it is.
    frame = df.set_index("record_id")[["name_pinyin", "sex", "birth_date", "phone_key", "village_id", "id_key"]]
    frame = frame.assign(birth_year=frame.birth_date.map(lambda b: b.year if b else None))
    estimate = (block_pairs(frame.birth_date) + block_pairs(frame.phone_key)
                + sorted_neighbourhood_pairs(frame.name_pinyin))
    started = time.perf_counter()
    indexer = recordlinkage.Index()
    indexer.block("birth_date")
    indexer.block("phone_key")
    if estimate <= BASELINE_MAX_PAIRS:
        indexer.sortedneighbourhood("name_pinyin", window=3)
        note = ""
    else:
        indexer.sortedneighbourhood("name_pinyin", window=3, block_on="birth_year")
        note = (f"standard index would make ~{estimate:,} pairs (> {BASELINE_MAX_PAIRS:,}): sorted"
                " neighbourhood run within birth years")
    pairs = indexer.index(frame)
    indexed = time.perf_counter()
    compare = recordlinkage.Compare()
    compare.string("name_pinyin", "name_pinyin", method="jarowinkler", threshold=0.85, label="name")
    for column in ("sex", "birth_date", "phone_key", "village_id", "id_key"):
        compare.exact(column, column, label=column)
    features = compare.compute(pairs, frame)
    compared = time.perf_counter()
    matches = recordlinkage.ECMClassifier().fit_predict(features)
    done = time.perf_counter()
    score = evaluate(matches.tolist(), truth)
    return {**score, "candidates": len(pairs), "index_s": indexed - started, "compare_s": compared - indexed,
            "classify_s": done - compared, "seconds": done - started, "note": note}


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(n: int, seed: int, skip_baseline: bool) -> None:
    started = time.perf_counter()
    df = truth_set(n, seed=seed)
    built = time.perf_counter() - started
    truth = true_pairs(df)
    print(f"\n== {n:,} records: {n - df.true_id.nunique():,} duplicates, {len(truth):,} true pairs;"
          f" truth set built in {built:.1f} s")
    seconds, at_link, at_review = ours(df, truth)
    rows = [("splink, p >= 0.99 (link)", at_link, seconds), ("splink, p >= 0.5 (review)", at_review, seconds)]
    gc.collect()  # the baseline needs all the memory it can get at a million records
    base = None if skip_baseline else baseline(df, truth)
    if base:
        rows.append(("recordlinkage ECM", base, base["seconds"]))
    print(f"{'pipeline':<28}{'seconds':>9}{'precision':>11}{'recall':>9}{'F1':>8}{'tp':>9}{'fp':>7}{'fn':>7}")
    for label, s, secs in rows:
        print(f"{label:<28}{secs:>9.1f}{s['precision']:>11.4f}{s['recall']:>9.4f}{s['f1']:>8.4f}"
              f"{s['tp']:>9,}{s['fp']:>7,}{s['fn']:>7,}")
    if base:
        print(f"baseline: {base['candidates']:,} candidate pairs; index {base['index_s']:.1f} s, compare"
              f" {base['compare_s']:.1f} s, classify {base['classify_s']:.1f} s" + (f"; {base['note']}"
                                                                                    if base["note"] else ""))
        print(f"ratio of run times ours / baseline: {seconds / base['seconds']:.2f};"
              f" F1 ours {at_link['f1']:.4f} (link threshold) vs baseline {base['f1']:.4f}")
    print(f"peak memory so far: {peak_mib():,.0f} MiB")


def ours(df: pd.DataFrame, truth: set) -> tuple[float, dict, dict]:
    """Blocking analysis, then ``linkage.dedupe``; prints the rules, phases and parameters."""
    clock = time.perf_counter()
    rules = linkage.blocking_analysis(df)
    analysed = time.perf_counter() - clock
    print(f"{'blocking rule':<24}{'adds pairs':>14}{'cumulative':>14}   (Splink blocking analysis, {analysed:.1f} s)")
    for r in rules:
        print(f"{r['rule']:<24}{r['marginal']:>14,}{r['cumulative']:>14,}")
    result = linkage.dedupe(df)
    print("ours, seconds per phase: " + ", ".join(f"{k} {v:.1f}" for k, v in result.timings.items()))
    print(f"trained prior {result.prior:.3g}" + (f"; notes: {'; '.join(result.notes)}" if result.notes else ""))
    print_parameters(result)
    links = result.links()
    at_link = evaluate(zip(links.record_id_l, links.record_id_r, strict=True), truth)
    at_review = evaluate(zip(result.pairs.record_id_l, result.pairs.record_id_r, strict=True), truth)
    return result.timings["total"], at_link, at_review


def print_parameters(result: linkage.DedupeResult) -> None:
    print("trained m / u per level:")
    for field_name, levels in result.parameters.items():
        cells = [f"{level} {_p(m)}/{_p(u)}" for level, (m, u) in levels.items()]
        print(f"  {field_name:<12}" + "; ".join(cells))


def _p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-baseline", action="store_true")
    args = ap.parse_args()
    logging.getLogger("splink").setLevel(logging.ERROR)  # its training chatter is not the result
    for n in args.records:
        run(n, args.seed, args.skip_baseline)


if __name__ == "__main__":
    main()
