"""The experiments branch and the bytes it points to.

The ground floor: `gitcmd` is the only module that runs git or writes git's
object files; `store` turns the branch into a tree of files changed by atomic
compare-and-swap commits; `journal` is a live run's write-ahead log; `diskio`
makes every write whole or a clear error; `artifacts` and `objectstore` keep
artifact bytes on the branch, in a local store or in an object store. Nothing
here knows what a run record looks like.
"""
