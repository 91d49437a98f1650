"""The exit codes of `rig` commands."""

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_BENCH_FAULT = 3  # nothing failed for a meter, but the bench could not measure some points (resume them)
EXIT_OPERATOR = 4  # stopped: the operator said no or did not answer; incomplete, not a meter failure
