"""``duygu evaluate``: run an evaluation protocol and print the paper-style table."""

from __future__ import annotations

import argparse
import sys
from typing import Any

HELP = "evaluate classifiers with a protocol (paper, grouped, loso) on features, DEAP or the session store"


def add_input_arguments(p: argparse.ArgumentParser) -> None:
    """Dataset options shared by ``evaluate`` and ``train``."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--features", metavar="CSV", help="feature table: a label column, optional group column, numeric features")
    src.add_argument("--deap", metavar="DIR", help="folder of DEAP preprocessed Python files (s01.dat ...)")
    src.add_argument("--store", metavar="PATH", help="Duygu session store (SQLite) with labelled trials")
    p.add_argument("--label", metavar="COL", help="label column of --features (required with it)")
    p.add_argument("--group", metavar="COL", help="trial/recording column of --features (for grouped splits)")
    p.add_argument("--subject", metavar="COL", help="subject column of --features (for loso)")
    p.add_argument("--drop", metavar="COLS", default="", help="comma-separated non-feature columns of --features to ignore")
    p.add_argument("--participants", metavar="IDS", help="comma-separated participant ids of --store (default: all)")
    p.add_argument("--deap-subjects", metavar="IDS", help="comma-separated DEAP files to use, e.g. s01,s02 (default: all)")
    p.add_argument("--deap-labels", choices=("quadrant", "emotion"), default="quadrant",
                   help="DEAP classes: HVHA/HVLA/LVHA/LVLA or happy/relaxing/tense/sad (default: quadrant)")
    p.add_argument("--deap-baseline", choices=("remove", "subtract"), default="remove",
                   help="drop the 3 s pre-trial baseline, or subtract its mean first (default: remove)")
    p.add_argument("--preset", metavar="NAME", default="default",
                   help="feature preset for --deap and --store: default or paper (default: default)")
    p.add_argument("--seed", type=int, default=0, help="seed of splits, estimators and permutations (default: 0)")
    p.add_argument("--fuse-music", action="store_true",
                   help="with --store: append the clip summary of each trial's stimulus excerpt to its EEG windows")


def _csv_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def load_dataset(args: argparse.Namespace, keep_windows: bool = False) -> Any:
    """The :class:`models.datasets.Dataset` the input options name (with the raw windows
    of every row when ``keep_windows``, for classifiers of raw EEG)."""
    from acquisition.errors import DataError
    from acquisition.settings import load_settings
    from app.commands._common import participant_ids
    from models import datasets

    cache = load_settings().features_cache_dir
    if getattr(args, "fuse_music", False) and not args.store:
        raise DataError("--fuse-music needs --store PATH (the stimuli come from the sessions' protocols)")
    if args.features:
        if not args.label:
            raise DataError("--features needs --label COL naming the label column")
        if args.preset != "default":
            raise DataError(f"--preset applies to --deap and --store, not to a feature table (got {args.preset!r})")
        return datasets.load_feature_table(args.features, args.label, group=args.group,
                                           drop=_csv_list(args.drop) or (), subject=args.subject)
    for opt in ("label", "group", "subject"):
        if getattr(args, opt):
            raise DataError(f"--{opt} applies to --features only")
    if args.deap:
        return datasets.load_deap(args.deap, args.preset, labels=args.deap_labels, baseline=args.deap_baseline,
                                  subjects=_csv_list(args.deap_subjects), keep_windows=keep_windows,
                                  cache_dir=cache)
    from acquisition.store.sqlite import SessionStore

    if getattr(args, "fuse_music", False):
        from models.fusion import from_store

        with SessionStore(args.store, readonly=True) as store:
            return from_store(store, args.preset, participants=participant_ids(args.participants),
                              keep_windows=keep_windows, cache_dir=cache)
    who_ids = participant_ids(args.participants)
    with SessionStore(args.store, readonly=True) as store:
        trials = store.labelled_trials(participants=who_ids)
    if not trials:
        who = f" of participants {args.participants}" if args.participants else ""
        raise DataError(f"store {args.store} holds no labelled trial{who}")
    return datasets.from_trials(trials, args.preset, keep_windows=keep_windows, cache_dir=cache)


def needs_windows(names: list[str] | None) -> bool:
    """True when one of ``names`` reads raw EEG windows."""
    from models.registry import WINDOWS, input_of

    return bool(names) and any(input_of(n) == WINDOWS for n in names or [])


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_input_arguments(p)
    p.add_argument("--protocol", default="grouped", choices=("paper", "grouped", "loso"),
                   help="paper: random 5-fold + 70/30 + 80/20 (leaky); grouped: by trial, with the leakage gap; "
                        "loso: leave one subject out (default: grouped)")
    p.add_argument("--classifiers", metavar="NAMES",
                   help="comma-separated registry names, or auto (chosen by inner CV per fold) "
                        "(default: paper's four for paper, every feature classifier otherwise)")
    p.add_argument("--permutations", type=int, default=200, metavar="N",
                   help="label permutations for the chance level and p-value (0: majority rate; default: 200, "
                        "so p can reach 0.005)")
    p.add_argument("--permutation-reference", metavar="NAME",
                   help="classifier whose permuted runs give the chance level (default: the protocol's, lda)")
    p.add_argument("--permutations-for", choices=("reference", "all"), default="reference",
                   help="permute the reference only, or every classifier for a p-value each (default: reference)")
    p.add_argument("--jobs", type=int, default=-1, metavar="N",
                   help="parallel workers on this machine (default: -1, all cores)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run on a dask.distributed cluster (e.g. tcp://host:8786)")
    p.add_argument("--json", metavar="OUT", help="write the result JSON ('-' for stdout)")
    p.add_argument("--report", metavar="OUT.html", help="write an HTML report with confusion-matrix plots")


def check_jobs(jobs: int) -> int:
    """``--jobs`` must be -1 (all cores) or >= 1."""
    from acquisition.errors import DataError

    if jobs == 0 or jobs < -1:
        raise DataError(f"--jobs must be -1 (all cores) or >= 1, got {jobs}")
    return jobs


def warn(message: str) -> None:
    """One ``duygu: warning: ...`` line on stderr."""
    print(f"duygu: warning: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from app.commands._common import write_json
    from app.progress import stderr_progress
    from models.evaluation import format_table, run_evaluation
    from models.registry import parse_classifiers

    classifiers = parse_classifiers(args.classifiers) if args.classifiers else None
    reference = parse_classifiers(args.permutation_reference)[0] if args.permutation_reference else None
    dataset = load_dataset(args, keep_windows=needs_windows([*(classifiers or []), *([reference] if reference else [])]))
    update, close = stderr_progress(f"evaluate {args.protocol}")
    try:
        report = run_evaluation(dataset, args.protocol, classifiers, n_permutations=args.permutations,
                                n_jobs=check_jobs(args.jobs), scheduler=args.scheduler, random_state=args.seed,
                                progress=update, permutation_reference=reference,
                                permutations_for=args.permutations_for)
    finally:
        close()
    for message in report.warnings:
        warn(message)
    out = sys.stderr if args.json == "-" else sys.stdout
    print(format_table(report), file=out)
    if args.json:
        write_json(report.as_full_json(), args.json)
    if args.report:
        from models.report import write_report

        write_report(report, args.report)
    return 0
