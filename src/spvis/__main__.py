"""`python -m spvis ...` is the same as the `spvis` command (used by torchrun: `torchrun -m spvis train`)."""

from spvis.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
