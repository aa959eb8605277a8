"""Sharing the experiments branch through a git remote: push, pull and sync.

It fetches a teammate's branch, merges it record by record with `format.merge`,
and pushes with retries on a time budget. It builds on `reading`, `runs`,
`format` and `storage`.
"""
