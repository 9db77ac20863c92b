"""``duygu record``: record a source to a CSV file or to a session in the store."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from app.commands._common import add_source_argument, positive_float, store_path, write_json

HELP = "record a source for S seconds to a CSV file (--out) or to the session store (--store)"

_CONNECT_TIMEOUT_S = 10.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_source_argument(p)
    p.add_argument("--seconds", type=positive_float, required=True, metavar="S",
                   help="seconds of samples to record (at 128 Hz)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", metavar="FILE.csv", help="write time,AF3,...,AF4 rows (µV) to this CSV file")
    where.add_argument("--store", nargs="?", const="", metavar="PATH",
                       help="record a session into the store (PATH, or the default store if omitted)")
    p.add_argument("--participant", default="TEST01", metavar="ID",
                   help="pseudonymous participant code for --store (letters then digits, e.g. P01; default: TEST01)")
    p.add_argument("--json", metavar="OUT", help="write the counters as JSON ('-' for stdout)")


def written_store(args: argparse.Namespace) -> Path | None:
    """The store ``--store`` records into (the default one for a bare ``--store``)."""
    if args.store is None:
        return None
    return store_path(args)


def run(args: argparse.Namespace) -> int:
    from acquisition.channels import SFREQ_HZ
    from acquisition.errors import StoreError
    from acquisition.settings import load_settings
    from acquisition.sources.base import SourceStatus
    from acquisition.sources.spec import open_source, parse_source_spec
    from acquisition.store.recorder import CsvRecorder, StoreRecorder, refuse_partial
    from acquisition.store.sqlite import SessionStore, validate_participant
    from app.commands._common import ending_signals

    if args.out:
        refuse_partial(args.out)  # an interrupted recording's rows are never replaced
    spec = parse_source_spec(args.source)
    n_target = round(args.seconds * SFREQ_HZ)
    store = session_id = None
    settings = load_settings()
    if args.store is not None:
        validate_participant(args.participant, settings.participant_pattern)
        store = SessionStore(store_path(args), participant_pattern=settings.participant_pattern)
    source = open_source(spec)
    report: dict[str, Any] = {"source": str(spec), "seconds_requested": args.seconds}
    status = "interrupted"
    written = 0
    csv_rec = store_rec = None
    ended_by = ""
    try:
        # SIGTERM and SIGHUP end a recording as Ctrl-C does: what arrived is stored
        with ending_signals():
            try:
                source.connect(timeout_s=_CONNECT_TIMEOUT_S)
                start = 0  # from the first sample the source delivered (a fast replay may be ahead)
                stop = start + n_target
                if store is not None:
                    device = source.info.as_dict() if source.info else {}
                    session_id = store.start_session(
                        args.participant, {"name": "record", "seconds": args.seconds}, str(spec), device
                    )
                    store_rec = StoreRecorder(source, store, session_id, start_index=start, stop_index=stop).start()
                else:
                    csv_rec = CsvRecorder(source, args.out, start_index=start)
                # a live source delivers S seconds in about S / speed seconds; allow for losses
                speed = getattr(source, "speed", spec.speed) or 1.0
                deadline = time.monotonic() + args.seconds / speed + 2 * source.loss_timeout_s + 10.0
                while source.buffer.total < stop:
                    source.buffer.wait_for(stop - 1, 0.25)
                    if csv_rec is not None:
                        csv_rec.flush(stop)
                    if source.status == SourceStatus.STOPPED or time.monotonic() > deadline:
                        break
                status = "completed"
            except KeyboardInterrupt as exc:
                ended_by = str(exc) or "Ctrl-C"
    finally:
        # the tail: whatever ended the recording, what arrived is written
        if csv_rec is not None:
            csv_rec.flush(source.buffer.total if ended_by else stop)
            csv_rec.close()
            written = csv_rec.samples_written
            report["out"] = str(args.out)
        source.disconnect()
        if store_rec is not None:
            rec_stats = store_rec.stop()
            written = int(rec_stats["samples_written"])  # type: ignore[call-overload]
            report.update({"store": str(store.path) if store else None, "session_id": session_id,
                           "overruns": rec_stats["overruns"]})
            if store_rec.last_error and store_rec.paused:
                report["store_error"] = store_rec.last_error
                status = "failed"
        if status == "completed" and written < n_target:  # the source ended or went silent early
            status = "failed"
        if store is not None:
            if session_id is not None:
                try:
                    store.finish_session(session_id, status)
                except StoreError as exc:
                    report["store_error"] = str(exc)
            store.close()
    counters = source.counters
    report.update({
        "received": counters.received, "lost": counters.lost, "interpolated": counters.interpolated,
        "reconnects": counters.reconnects, "gaps": len(source.gaps), "samples_written": written,
        "seconds_recorded": written / SFREQ_HZ, "status": status,
    })
    where = f"session {session_id} in {store.path}" if store is not None else str(args.out)
    print(f"recorded {written} samples ({written / SFREQ_HZ:.2f} s) to {where}")
    print(f"received {counters.received}, lost {counters.lost}, interpolated {counters.interpolated}, "
          f"gaps {len(source.gaps)}")
    if args.json:
        write_json(report, args.json)
    if "store_error" in report:
        raise StoreError(f"recording stopped: {report['store_error']}")
    if ended_by:
        print(f"duygu: recording interrupted ({ended_by}) after {written} of {n_target} samples", file=sys.stderr)
        return 130
    if written < n_target:
        reason = f": {source.last_error}" if source.last_error else ""
        print(f"duygu: only {written} of {n_target} samples arrived (source {source.status}{reason})",
              file=sys.stderr)
        return 1
    return 0
