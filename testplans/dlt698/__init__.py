"""DL/T 698.45 plans: frames, association, the mandatory objects against the reference, freezes."""
