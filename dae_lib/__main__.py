"""``python -m dae_lib`` and the installed commands ``dae`` and ``dae-suppress``: the command line
(cli.py, suppress.py), with Ctrl-C one line and exit status 130 even while torch is still loading."""
import sys


def _interruptible(load_main):
    try:
        return load_main()()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def main() -> int:
    """``python -m dae_lib ...`` / ``dae ...``"""
    return _interruptible(lambda: __import__("dae_lib.cli", fromlist=["main"]).main)


def suppress() -> int:
    """``dae-suppress ...``"""
    return _interruptible(lambda: __import__("dae_lib.suppress", fromlist=["main"]).main)


if __name__ == "__main__":
    sys.exit(main())
