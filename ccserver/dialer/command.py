"""``ccserver dialer simulate``: the discrete-event simulation of one campaign through the real pacing code."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ccserver.dialer.pacing import PacingSettings
from ccserver.dialer.simulate import simulate

__all__ = ["add_parser", "run"]


def _positive(kind: Any, low: float, high: float) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}")
        return value

    return parse


def add_parser(sub: Any) -> None:
    dialer = sub.add_parser("dialer", help="the outbound dialer")
    dialer_sub = dialer.add_subparsers(dest="dialer_command", required=True)
    sim = dialer_sub.add_parser("simulate", help="simulate one campaign through the real pacing code (no Asterisk)")
    sim.add_argument("--agents", type=_positive(int, 1, 2000), default=20, help="agents signed in (20)")
    sim.add_argument("--answer-rate", type=_positive(float, 0.01, 1.0), default=0.3,
                     help="share of Originates a person answers (0.3)")
    sim.add_argument("--hours", type=_positive(float, 0.1, 24.0), default=8.0, help="simulated hours (8)")
    sim.add_argument("--mode", choices=("progressive", "predictive", "both"), default="both",
                     help="pacing mode; both: side by side (default)")
    sim.add_argument("--seed", type=int, default=1, help="random seed (1): same seed, same figures")
    sim.add_argument("--handle-mean", type=_positive(float, 10.0, 3600.0), default=240.0,
                     help="mean talk + wrap-up seconds, lognormal (240)")
    sim.add_argument("--abandon-cap", type=_positive(float, 0.0, 0.5), default=0.03, help="abandon cap (0.03)")
    sim.add_argument("--json", action="store_true", help="one JSON object per mode instead of a line")
    dialer.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    modes = ("progressive", "predictive") if args.mode == "both" else (args.mode,)
    settings = PacingSettings(abandon_cap=args.abandon_cap)
    for mode in modes:
        result = simulate(agents=args.agents, answer_rate=args.answer_rate, hours=args.hours, mode=mode,
                          seed=args.seed, handle_mean=args.handle_mean, settings=settings)
        if args.json:
            print(json.dumps(result.__dict__, sort_keys=True))
        else:
            print(result.line())
    return 0
