"""`python -m rig.cli`: the `rig` command."""

from rig.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
