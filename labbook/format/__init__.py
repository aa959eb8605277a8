"""The record format: what a run or experiment record holds, and nothing else.

`record` owns every path and field name of the on-branch format (version 1),
`recordrules` and `schema` declare what a record read from the branch may hold
(the trust boundary), `yamlio` reads and writes the YAML, `validation` checks
values where users log them, `merge` is the field-by-field three-way merge, and
`goals` says which way a metric is better. It builds on `storage` only.
"""
