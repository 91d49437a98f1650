"""`python -m rig`: the `rig` command (the console script's entry point, with its early stop-signal handling)."""

from rig.launch import main

if __name__ == "__main__":
    main()
