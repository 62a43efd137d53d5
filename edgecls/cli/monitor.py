"""`edgecls monitor LOG`: a drift log's PSI per statistic per window, as sparklines, and its drift events."""

from __future__ import annotations

import json

NAME = "monitor"
HELP = "print a drift log (Predictor.start_monitor(log=...)): PSI per statistic per window and the drift events"

BARS = " ▁▂▃▄▅▆▇█"


def add_arguments(p) -> None:
    p.add_argument("log", help="the JSON-lines drift log")
    p.add_argument("--last", type=int, default=20, help="show at most this many most recent events (default 20)")
    p.add_argument("--fail-on-drift", action="store_true", help="exit 1 when the log holds a drift event")
    p.add_argument("--json", action="store_true", help="print the window records as JSON")
    p.add_argument("--plot", metavar="PNG", help="also draw the history (a .png path): PSI per statistic per window as a "
                                               "multiple of its event threshold, the windows with events, and each "
                                               "statistic's mean vs its reference")


def run(a) -> int:
    from ..runtime.drift import read_log
    from .render import plain

    recs = read_log(a.log)
    if a.json:
        print(json.dumps(recs, indent=2))
        return 0
    if not recs:
        print(f"{a.log}: no windows recorded yet")
        return 0
    if a.plot:
        from ..openset.history import plot_history

        print(f"plot: {plot_history(recs, a.plot)}")
    from ..openset.history import threshold_of

    stats = list(dict.fromkeys(k for r in recs for k in r["psi"]))
    last = recs[-1]
    how = (f"fixed PSI threshold {last['psi_threshold']:g}" if last.get("psi_threshold") is not None else
           f"thresholds for a false-alarm rate of {last['false_alarm_rate']:g} per window" if last.get("false_alarm_rate")
           else f"PSI threshold {threshold_of(last, '')} (an older log)")
    print(f"{len(recs)} windows, {last['frames']} frames; {how}; PSI per statistic over the windows "
          "(█ = twice its threshold or more)")
    for name in stats:
        vals = [r["psi"].get(name, 0.0) for r in recs]
        limits = [threshold_of(r, name) for r in recs]
        line = "".join(BARS[min(8, int(v / t / 2 * 8))] if t else BARS[0] for v, t in zip(vals[-80:], limits[-80:]))
        limit = f"{limits[-1]:.3f}" if limits[-1] else "none"
        print(f"  {name:13s} {line}  last {vals[-1]:.3f}, max {max(vals):.3f}, threshold {limit}")
    events = [(r, e) for r in recs for e in r.get("events", [])]
    print(f"{len(events)} drift events" + (":" if events else ""))
    for r, e in events[-a.last:]:
        over = f" > {e['threshold']:.2f}" if e.get("threshold") is not None else ""
        print(plain(f"  {r.get('time', '?')}  frame {e['frames']}: {e['statistic']} PSI {e['psi']:.2f}{over}: {e['message']}"))
    return 1 if events and a.fail_on_drift else 0
