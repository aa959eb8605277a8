"""Reading runs back: the runs table, the query language, and text for people.

`catalog` lists every run on the branch and reads records through `cache`;
`rows` turns a record into a row of the runs table; `query` answers
`search_runs` and friends with pandas; `filterlang` parses filters; `display`
and `mdreport` turn results into terminal text and markdown; `fsck`, `codelog`
and `live` are the read commands built on them. It builds on `runs`, `format`
and `storage`, and writes nothing to the branch.
"""
