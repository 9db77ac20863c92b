"""``duygu music``: audio features, music-emotion evaluation, training and prediction."""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from app.commands._common import positive_float

HELP = "music emotion: audio features of files, evaluate/train classifiers on a labelled library"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="music_cmd", metavar="COMMAND", required=True)

    f = sub.add_parser("features", help="features of one audio file or of every file in a folder",
                       description="One record per file: path, duration_s, tempo_bpm (null unless the "
                       "tempo is confident; tempo_estimate_bpm, tempo_confidence and tempo_status say more), "
                       "key/mode and the mean and std of MFCC, chroma, spectral and energy features. Files that cannot be "
                       "analysed are reported (stderr and 'error' in JSON); the exit status is 0 when at "
                       "least one file was analysed.")
    f.add_argument("path", metavar="FILE|DIR")
    f.add_argument("--json", metavar="OUT", help="write the records as a JSON list ('-' for stdout)")
    f.add_argument("--csv", metavar="OUT", help="write analysed files as a feature table "
                   "(columns label, group, features) for 'duygu music evaluate --features'")
    f.add_argument("--duration-s", type=positive_float, metavar="S", help="analyse only the first S seconds")

    e = sub.add_parser("evaluate", help="evaluate music-emotion classifiers on a labelled library",
                       description="DIR holds one sub-folder per emotion. Segments of a file never sit on "
                       "both sides of a grouped split. The protocols, permutation test and leakage gap are "
                       "those of 'duygu evaluate'. Prints accuracy, precision, recall, F1, MCC and ROC AUC.")
    _add_input(e)
    e.add_argument("--protocol", default="grouped", help="paper, grouped or loso (= leave one file out) "
                   "(default: grouped)")
    e.add_argument("--classifiers", metavar="A,B", help="registry names, lstm, cnn and/or emb:NAME (registry "
                   "classifier NAME on --embedding features) "
                   "(default: ann,svm-rbf,knn,logreg,lstm,cnn, plus emb:logreg,emb:svm-rbf,emb:knn with "
                   "--embedding; lstm, cnn and emb:NAME need DIR)")
    e.add_argument("--permutations", type=int, default=0, metavar="N",
                   help="label permutations for the chance level (default 0: majority class)")
    e.add_argument("--permutation-reference", metavar="NAME",
                   help="classifier whose permuted runs give the chance level, listed or not (default: the "
                        "protocol's, lda: shrinkage LDA)")
    e.add_argument("--jobs", type=int, default=1, metavar="N", help="parallel workers on this machine (-1: all cores)")
    e.add_argument("--scheduler", metavar="ADDRESS", help="run on a dask.distributed cluster (e.g. tcp://host:8786)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--json", metavar="OUT", help="write the evaluation JSON ('-' for stdout)")

    t = sub.add_parser("train", help="train a music-emotion model on a labelled library",
                       description="Registry classifiers (also emb:NAME) are saved as skops bundles, the LSTM "
                       "and the CNN as weights plus JSON metadata (read back with torch.load(weights_only=True)).")
    t.add_argument("dir", metavar="DIR")
    _add_segments(t)
    t.add_argument("--classifier", default="svm-rbf", metavar="NAME",
                   help="registry name, lstm, cnn or emb:NAME (default: svm-rbf)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", required=True, metavar="MODEL", help="model file to write")

    pr = sub.add_parser("predict", help="perceived emotion of audio files with a trained music model")
    pr.add_argument("paths", nargs="+", metavar="FILE|DIR")
    pr.add_argument("--model", required=True, metavar="MODEL")
    pr.add_argument("--json", metavar="OUT", help="write the predictions as JSON ('-' for stdout)")


def _add_segments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--segment-s", type=positive_float, default=10.0, metavar="S",
                   help="segment length (default 10 s; >= 4 s)")
    p.add_argument("--hop-s", type=positive_float, default=5.0, metavar="S", help="segment step (default 5 s)")
    p.add_argument("--max-duration-s", type=positive_float, metavar="S", help="use only the first S seconds of each file")
    p.add_argument("--epochs", type=int, metavar="N", help="training epochs of lstm and cnn (default: 80 and 30)")
    p.add_argument("--embedding", metavar="PATH", help="folder of a pretrained audio transformer (HuBERT, "
                   "wav2vec 2.0, ...; config.json and weights as save_pretrained writes them) whose pooled hidden "
                   "states are the features of emb:NAME classifiers; read offline, never downloaded")
    p.add_argument("--embedding-layer", type=int, default=-1, metavar="N",
                   help="hidden state pooled (0: input of the first transformer layer; default -1: the last)")


def _add_input(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", nargs="?", metavar="DIR", help="library folder (one sub-folder per emotion)")
    p.add_argument("--features", metavar="CSV", help="feature table instead of DIR (e.g. from 'music features --csv')")
    p.add_argument("--label", metavar="COL", help="label column of --features")
    p.add_argument("--group", metavar="COL", help="group column of --features (default: 'group' if present)")
    p.add_argument("--drop", metavar="COLS", default="", help="comma-separated columns of --features to ignore")
    _add_segments(p)


def run(args: argparse.Namespace) -> int:
    return {"features": _features, "evaluate": _evaluate, "train": _train, "predict": _predict}[args.music_cmd](args)


@contextlib.contextmanager
def _progress(desc: str) -> Iterator[Callable[[int, int], None]]:
    """The engine's ``progress(done, total)`` on stderr, as ``duygu evaluate`` draws it
    (:func:`app.progress.stderr_progress`: a bar on a terminal, else a line with an ETA
    every few seconds), closed on exit."""
    from app.progress import stderr_progress

    update, close = stderr_progress(desc)
    try:
        yield update
    finally:
        close()


# -- features ---------------------------------------------------------------------------
def _features(args: argparse.Namespace) -> int:
    from acquisition.errors import DataError
    from app.commands._common import write_json
    from processing import audio

    files = audio.list_files(args.path)
    root = Path(args.path) if Path(args.path).is_dir() else None
    records: list[dict[str, Any]] = []
    quiet = args.json == "-"
    if not quiet:
        print(f"{'file':<40} {'duration s':>10} {'tempo bpm':>14} {'key':<9} {'rms':>8} {'centroid Hz':>11}")
    for path in files:
        try:
            rec = audio.analyse_file(path, duration_s=args.duration_s)
        except DataError as exc:
            print(f"duygu: {path}: error: {exc}", file=sys.stderr)
            records.append({"path": str(path), "error": str(exc)})
            continue
        for w in rec["warnings"]:
            print(f"duygu: {path}: warning: {w}", file=sys.stderr)
        if root is not None:
            rel = path.relative_to(root)
            rec["group"] = rel.as_posix()
            rec["label"] = rel.parts[0] if len(rel.parts) > 1 else None
        records.append(rec)
        if not quiet:
            tempo = tempo_text(rec)
            name = path.name if len(path.name) <= 40 else path.name[:37] + "..."
            print(f"{name:<40} {rec['duration_s']:>10.2f} {tempo:>14} {rec['key'] or '-':<9} "
                  f"{rec['rms_mean']:>8.4f} {rec['spectral_centroid_hz_mean']:>11.0f}")
    analysed = [r for r in records if "error" not in r]
    if args.json:
        write_json(records, args.json)
    if args.csv:
        _write_table(analysed, args.csv)
    n_bad = len(records) - len(analysed)
    print(f"analysed {len(analysed)} of {len(records)} file(s); {n_bad} failed", file=sys.stderr)
    if not analysed:
        raise DataError(f"none of the {len(records)} file(s) under {args.path!r} could be analysed")
    return 0


def tempo_text(rec: dict[str, Any]) -> str:
    """A record's tempo for a table: ``128.3 (0.91)``, or its status when it is not reported."""
    if rec.get("tempo_bpm") is not None:
        return f"{rec['tempo_bpm']:.1f} ({rec['tempo_confidence']:.2f})"
    if rec.get("tempo_status") == "low confidence":
        return f"unsure ({rec['tempo_confidence']:.2f})"
    return str(rec.get("tempo_status") or "-")


def _write_table(records: list[dict[str, Any]], out: str) -> None:
    from processing import audio

    names = audio.summary_feature_names()
    rows = [r for r in records if all(r.get(n) is not None and math.isfinite(r[n]) for n in names)]
    for r in records:
        if r not in rows:
            print(f"duygu: {r['path']}: not in the table (no tempo estimate: {r.get('duration_s')} s)", file=sys.stderr)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["label", "group", *names])
        for r in rows:
            w.writerow([r.get("label") or "", r.get("group") or r["path"], *(repr(float(r[n])) for n in names)])


# -- evaluate / train -------------------------------------------------------------------
def _deep_params(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """Settings of the LSTM and the CNN from the options."""
    from acquisition.errors import DataError

    if args.epochs is None:
        return {}, {}
    if args.epochs < 1:
        raise DataError(f"--epochs must be >= 1, got {args.epochs}")
    return {"epochs": args.epochs}, {"epochs": args.epochs}


def _check_embedding(args: argparse.Namespace, names: list[str]) -> None:
    """--embedding and emb:NAME classifiers come together (checked before the slow part)."""
    from acquisition.errors import DataError
    from models import music

    if music.uses_embedding(names) and not args.embedding:
        first = next(n for n in names if n.startswith(music.EMBEDDING_PREFIX))
        raise DataError(f"classifier {first!r} needs --embedding PATH (a pretrained audio model folder)")
    if args.embedding and not music.uses_embedding(names):
        raise DataError(f"--embedding is only read by emb:NAME classifiers, got {','.join(names)}")
    if args.embedding_layer != -1 and not args.embedding:
        raise DataError(f"--embedding-layer {args.embedding_layer} needs --embedding PATH")


def _load_library(args: argparse.Namespace, directory: str) -> Any:
    from models import music

    embedder = None
    if args.embedding:
        from models.embedding import AudioEmbedder

        embedder = AudioEmbedder.load(args.embedding, args.embedding_layer)
        print(f"embedding: {embedder.model_type} from {embedder.path} ({embedder.n_layers} layers, "
              f"{embedder.hidden_size} values, layer {args.embedding_layer})", file=sys.stderr)
    with _progress("music analyse") as update:
        lib = music.load_library(directory, segment_s=args.segment_s, hop_s=args.hop_s,
                                 max_duration_s=args.max_duration_s, progress=update, embedder=embedder)
    for path, reason in lib.skipped:
        print(f"duygu: {path}: skipped: {reason}", file=sys.stderr)
    ds = lib.dataset
    print(f"library: {len(lib.files)} file(s), {ds.n_rows} segment(s) of {args.segment_s:g} s, "
          f"classes {', '.join(ds.classes)}", file=sys.stderr)
    return lib


def _evaluate(args: argparse.Namespace) -> int:
    from acquisition.errors import DataError
    from app.commands._common import write_json
    from models import music

    if (args.dir is None) == (args.features is None):
        raise DataError("give either a library DIR or --features CSV --label COL, not both or neither")
    from models.evaluation import get_protocol

    get_protocol(args.protocol)  # fail before the slow part
    names = (music.parse_music_classifiers(args.classifiers) if args.classifiers
             else music.default_classifiers(bool(args.embedding)))
    reference = (music.parse_music_classifiers(args.permutation_reference)[0]
                 if args.permutation_reference else None)
    lstm_params, cnn_params = _deep_params(args)
    if args.features is not None:
        if not args.label:
            raise DataError("--features needs --label COL (the label column)")
        if args.embedding:
            raise DataError("--embedding needs a library DIR (a feature table holds no audio)")
        from models.datasets import load_feature_table

        group = args.group
        if group is None:
            with open(args.features, newline="", encoding="utf-8-sig") as fh:
                header = next(csv.reader(fh), [])
            group = "group" if "group" in header else None
        drop = [c for c in args.drop.split(",") if c.strip()]
        lib = music.library_from_table(load_feature_table(args.features, args.label, group=group, drop=drop))
        if not args.classifiers:
            names = [c for c in names if c not in (music.LSTM, music.CNN)]
    else:
        _check_embedding(args, names)
        lib = _load_library(args, args.dir)
    with _progress(f"music evaluate {args.protocol}") as update:
        result = music.evaluate_library(lib, args.protocol, names, n_permutations=args.permutations,
                                        random_state=args.seed, lstm_params=lstm_params, cnn_params=cnn_params,
                                        progress=update, n_jobs=args.jobs, scheduler=args.scheduler,
                                        permutation_reference=reference)
    if args.json != "-":
        print(format_music_table(result))
    if args.json:
        write_json(result, args.json)
    return 0


def format_music_table(result: dict[str, Any]) -> str:
    """The evaluation as a text table (percentages; MCC and ROC AUC as fractions)."""
    head = f"{'classifier':<14} {'split':<8} {'acc %':>6} {'prec %':>6} {'rec %':>6} {'F1 %':>6} {'MCC':>6} {'AUC':>6}"
    lines = [f"protocol: {result['protocol']}", head, "-" * len(head)]
    for r in result["results"]:
        auc = "-" if r.get("roc_auc") is None else f"{r['roc_auc']:.3f}"
        lines.append(f"{r['classifier']:<14} {r['split']:<8} {100 * r['accuracy']:>6.1f} {100 * r['precision']:>6.1f} "
                     f"{100 * r['recall']:>6.1f} {100 * r['f1']:>6.1f} {r['mcc']:>6.3f} {auc:>6}")
    lines.append(f"chance: {100 * result['chance']:.1f} %")
    if result.get("leakage_gap") is not None:
        lines.append(f"leakage gap (random - grouped accuracy): {100 * result['leakage_gap']:+.1f} points")
    return "\n".join(lines)


def _train(args: argparse.Namespace) -> int:
    from models import music

    names = music.parse_music_classifiers([args.classifier])  # fail before the slow part
    _check_embedding(args, names)
    lstm_params, cnn_params = _deep_params(args)
    lib = _load_library(args, args.dir)
    model = music.train_music_model(lib, names[0], random_state=args.seed, lstm_params=lstm_params,
                                    cnn_params=cnn_params)
    model.save(args.out)
    print(f"wrote {args.out}: {model.describe()}, trained on {lib.dataset.n_rows} segment(s), "
          f"classes {', '.join(model.classes)}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from acquisition.errors import DataError
    from app.commands._common import write_json
    from models import music
    from processing import audio

    model = music.MusicModel.load(args.model)
    out: list[dict[str, Any]] = []
    for given in args.paths:
        for path in audio.list_files(given):
            try:
                proba = model.predict_file(path)
            except DataError as exc:
                print(f"duygu: {path}: error: {exc}", file=sys.stderr)
                out.append({"path": str(path), "error": str(exc)})
                continue
            label = max(proba, key=proba.__getitem__)
            out.append({"path": str(path), "label": label, "probabilities": proba})
            if args.json != "-":
                print(f"{path}: {label} ({100 * proba[label]:.0f} %)")
    if args.json:
        write_json(out, args.json)
    if all("error" in r for r in out):
        raise DataError(f"none of the {len(out)} file(s) could be predicted")
    return 0
