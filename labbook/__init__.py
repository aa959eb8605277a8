"""labbook: ML runs committed as YAML records on your repository's `experiments` branch.

    import labbook
    labbook.set_experiment("diabetes", description="Can a linear model beat the mean?")
    with labbook.start_run(name="ridge", hypothesis="L2 helps") as run:
        labbook.log_params({"alpha": 0.9})
        labbook.log_metric("loss", 0.3, step=0)
        run.conclude("supported", "MSE fell 4%")
"""

__version__ = "0.1.0"

from .autolog import autolog
from .errors import (
    AccessDenied,
    AmbiguousRun,
    ArtifactError,
    BranchConflict,
    FilterSyntaxError,
    FormatError,
    GitError,
    InvalidValue,
    LabbookError,
    NoActiveRun,
    NotARepository,
    ParamConflict,
    RunNotFound,
    StorageError,
)
from .jupyter import compare, show
from .runs.run import Run
from .tracking import (
    active_run,
    conclude,
    define_metric,
    end_run,
    get_metric_history,
    get_run,
    init,
    list_experiments,
    load_history,
    log_artifact,
    log_artifacts,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    note,
    recover,
    search_runs,
    set_experiment,
    set_repository,
    set_tag,
    set_tags,
    start_run,
)

__all__ = [
    "AccessDenied",
    "AmbiguousRun",
    "ArtifactError",
    "BranchConflict",
    "FilterSyntaxError",
    "FormatError",
    "GitError",
    "InvalidValue",
    "LabbookError",
    "NoActiveRun",
    "NotARepository",
    "ParamConflict",
    "Run",
    "RunNotFound",
    "StorageError",
    "__version__",
    "active_run",
    "autolog",
    "compare",
    "conclude",
    "define_metric",
    "end_run",
    "get_metric_history",
    "get_run",
    "init",
    "list_experiments",
    "load_history",
    "log_artifact",
    "log_artifacts",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "note",
    "recover",
    "search_runs",
    "set_experiment",
    "set_repository",
    "set_tag",
    "set_tags",
    "show",
    "start_run",
]
