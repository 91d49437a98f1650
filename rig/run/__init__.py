"""A run's lifecycle, without pytest: what `rig run`, the pytest plugin (fixtures/) or any other runner
drives to make a journaled, signed run of test items on a bench.

- `session`: start a session of a run (a new run, or a resume of one), its journal and metadata;
- `bench`: open the bench with its traffic log and dead-man's switch, drive the source safe, close it;
- `admit`: instrument identities, the calibration gate, the resume's bench check, ambient conditions;
- `tally`: records with verdicts, bench faults, retries, item completions (what a resume skips);
- `finish`: the session's verdict, its traffic hashed, the session signed, results.json, the whole-run
  junit.xml, the key held for the seal;
- `resume`: run.json (what `rig run` was asked) and the resume pin check;
- `folder`: the run folder after the runner: seal, reports/latest, the whole-run documents of a resume,
  and the exit code of a run (`exits`: the codes).
"""
