"""Runs and the notebook verbs: one run's life, and edits of what is on the branch.

`repository` is a repository as labbook uses it (settings from git config, the
branch, the stores); `run` is one run's state and its `log_*` methods;
`lifecycle` starts, resumes, loads and recovers runs; `edits` changes runs and
experiments already committed; `command` runs a shell command as a run;
`reproduce`, `artifact_files`, `models`, `provenance` and `sysmetrics` are the
rest of a run's life. It builds on `format` and `storage`.
"""
