"""``duygu train``: fit one classifier on a dataset and save it as a skops bundle."""

from __future__ import annotations

import argparse

HELP = "train a classifier on features, DEAP or the session store and save a .skops model bundle"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from app.commands.evaluate import add_input_arguments

    add_input_arguments(p)
    p.add_argument("--classifier", default="lda", metavar="NAME",
                   help="registry name: ann, svm-poly, svm-rbf, knn, logreg, lda, forest (default: lda)")
    p.add_argument("--out", required=True, metavar="MODEL.skops", help="where to write the model bundle")
    p.add_argument("--protocol", choices=("auto", "none", "paper", "grouped", "loso"), default="auto",
                   help="evaluate the classifier first and keep the metrics in the bundle; auto: grouped "
                        "when the data has trials, else paper (default: auto)")
    p.add_argument("--permutations", type=int, default=0, metavar="N",
                   help="label permutations for the stored chance level (default: 0)")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="parallel workers for the evaluation")
    p.add_argument("--json", metavar="OUT", help="write the bundle metadata as JSON ('-' for stdout)")


def run(args: argparse.Namespace) -> int:
    from app.commands._common import write_json
    from app.commands.evaluate import load_dataset, progress_bar
    from models.bundle import save_bundle, train_bundle
    from models.evaluation import format_table, run_evaluation
    from models.registry import get_spec

    name = get_spec(args.classifier).name
    dataset = load_dataset(args)
    protocol = args.protocol
    if protocol == "auto":
        protocol = "grouped" if dataset.has_groups() else "paper"
    report = None
    if protocol != "none":
        update, close = progress_bar(f"evaluate {protocol}")
        try:
            report = run_evaluation(dataset, protocol, [name], n_permutations=args.permutations,
                                    n_jobs=args.jobs, random_state=args.seed, progress=update)
        finally:
            close()
        print(format_table(report))
    bundle = train_bundle(dataset, name, report, random_state=args.seed)
    if dataset.meta.get("fusion"):
        bundle.meta["fusion"] = dataset.meta["fusion"]
    path = save_bundle(args.out, bundle.estimator, bundle.meta)
    print(f"saved {name} ({', '.join(bundle.classes)}; {dataset.n_rows} rows, "
          f"{dataset.X.shape[1]} features) to {path}")
    if args.json:
        write_json(bundle.meta, args.json)
    return 0
