"""Command line: `python -m jaxsoft gradcheck [--json FILE]`."""

from __future__ import annotations

import argparse


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxsoft", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    gc = commands.add_parser(
        "gradcheck",
        help="closed-form derivatives vs autodiff of plain references vs finite differences")
    gc.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    gc.add_argument("--only", nargs="+", metavar="NAME", help="check only these entries")
    gc.add_argument("--seed", type=int, default=0, help="seed of the sampled points")
    args = parser.parse_args(argv)

    if args.command == "gradcheck":
        from jaxsoft import gradcheck

        return gradcheck.main(args.json, args.only, args.seed)
    return 2
