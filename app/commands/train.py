"""``duygu train``: fit a classifier on a dataset and save it as a skops bundle."""

from __future__ import annotations

import argparse

HELP = "train a classifier on features, DEAP or the session store and save a .skops model bundle"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from app.commands.evaluate import add_input_arguments

    add_input_arguments(p)
    p.add_argument("--classifier", default="lda", metavar="NAME[,NAME...]",
                   help="registry name (ann, svm-poly, svm-rbf, knn, logreg, lda, forest, hgb, riemann) or auto; "
                        "with several, each is evaluated and the best on the protocol's main split is trained "
                        "(default: lda)")
    p.add_argument("--out", required=True, metavar="MODEL.skops", help="where to write the model bundle")
    p.add_argument("--protocol", choices=("auto", "none", "paper", "grouped", "loso"), default="auto",
                   help="evaluate first and keep the metrics in the bundle; the protocol's unit also groups the "
                        "inner CV of the final fit; auto: grouped when the data has trials, else paper "
                        "(default: auto)")
    p.add_argument("--permutations", type=int, default=0, metavar="N",
                   help="label permutations for the stored chance level (default: 0)")
    p.add_argument("--jobs", type=int, default=-1, metavar="N",
                   help="parallel workers for the evaluation (default: -1, all cores)")
    p.add_argument("--json", metavar="OUT", help="write the bundle metadata as JSON ('-' for stdout)")


def run(args: argparse.Namespace) -> int:
    from acquisition.errors import DataError
    from app.commands._common import write_json
    from app.commands.evaluate import check_jobs, load_dataset, needs_windows, warn
    from app.progress import stderr_progress
    from models.bundle import inner_cv_warning, save_bundle, train_bundle
    from models.evaluation import best_main_row, format_table, run_evaluation
    from models.registry import parse_classifiers

    names = parse_classifiers(args.classifier)
    dataset = load_dataset(args, keep_windows=needs_windows(names))
    protocol = args.protocol
    if protocol == "auto":
        protocol = "grouped" if dataset.has_groups() else "paper"
    if protocol == "none" and len(names) > 1:
        raise DataError(f"--classifier names {len(names)} classifiers; choosing among them needs a protocol "
                        f"(--protocol none evaluates nothing)")
    report = None
    name = names[0]
    if protocol != "none":
        update, close = stderr_progress(f"evaluate {protocol}")
        try:
            report = run_evaluation(dataset, protocol, names, n_permutations=args.permutations,
                                    n_jobs=check_jobs(args.jobs), random_state=args.seed, progress=update)
        finally:
            close()
        for message in report.warnings:
            warn(message)
        print(format_table(report))
        name = best_main_row(report.as_full_json())["classifier"]
        if len(names) > 1:
            print(f"chose {name}: the best balanced accuracy on {report.main_split} (the protocol's main split)")
    bundle = train_bundle(dataset, name, report, random_state=args.seed,
                          protocol=None if protocol == "none" else protocol)
    fallback = inner_cv_warning(bundle)
    if fallback:
        warn(fallback)
    if dataset.meta.get("fusion"):
        bundle.meta["fusion"] = dataset.meta["fusion"]
    path = save_bundle(args.out, bundle.estimator, bundle.meta)
    chosen = bundle.meta.get("chosen_classifier")
    what = f"{name} ({chosen})" if chosen and chosen != name else name
    print(f"saved {what} ({', '.join(bundle.classes)}; {dataset.n_rows} rows, "
          f"{dataset.X.shape[1]} features) to {path}")
    if args.json:
        write_json(bundle.meta, args.json)
    return 0
