"""System metrics: the machine sampled into a run's history as ``system/*`` metrics.

``labbook.start_run(log_system_metrics=True)`` (or the setting below) starts a
:class:`Sampler`: a daemon thread that every N seconds (default 10) reads CPU,
memory, disk and network through ``psutil`` and, when an NVIDIA GPU and
``nvidia-ml-py`` are present, each GPU's utilisation, memory, power and
temperature, and logs them at step 0, 1, 2… of the run, so they chart like
any other metric. Ending (or detaching) the run stops and joins the thread
before the run's last commit. ``pip install 'labbook[system]'`` brings psutil.

==================================  =====================================  =======
setting (git config / environment)  meaning                                default
==================================  =====================================  =======
labbook.systemMetrics               sample every run (a start_run          false
LABBOOK_SYSTEM_METRICS              argument wins over it)
labbook.systemMetricsInterval       seconds between two samples            10
LABBOOK_SYSTEM_METRICS_INTERVAL
==================================  =====================================  =======

The environment variable wins over git config.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import InvalidValue

if TYPE_CHECKING:
    from .run import Run

DEFAULT_INTERVAL = 10.0
ENABLE_KEY, ENABLE_ENV = "labbook.systemmetrics", "LABBOOK_SYSTEM_METRICS"
INTERVAL_KEY, INTERVAL_ENV = "labbook.systemmetricsinterval", "LABBOOK_SYSTEM_METRICS_INTERVAL"
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}
_MB = 1024 * 1024
_log = logging.getLogger("labbook")


def wanted(config: Mapping[str, str], explicit: bool | None) -> bool:
    """Whether a run samples the machine: the argument if given, else the environment,
    else git config ``labbook.systemMetrics``."""
    if explicit is not None:
        return bool(explicit)
    name, text = _setting(config, ENABLE_ENV, ENABLE_KEY)
    if text is None:
        return False
    word = text.strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise InvalidValue(f"{name} = {text!r} is not true or false")


def interval(config: Mapping[str, str]) -> float:
    """Seconds between two samples (``labbook.systemMetricsInterval``, default 10)."""
    name, text = _setting(config, INTERVAL_ENV, INTERVAL_KEY)
    if text is None:
        return DEFAULT_INTERVAL
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 86400:
        raise InvalidValue(f"{name} = {text!r} is not a number of seconds; "
                           "allowed: more than 0 and less than 86400")
    return seconds


def _setting(config: Mapping[str, str], env: str, key: str) -> tuple[str, str | None]:
    if env in os.environ:
        return env, os.environ[env]
    return f"git config {key}", config.get(key)


def plan(config: Mapping[str, str], explicit: bool | None) -> float | None:
    """The sampling interval of a run about to start, or None when it samples nothing;
    a bad setting raises InvalidValue before the run starts."""
    return interval(config) if wanted(config, explicit) else None


def start(run: Run, seconds: float | None) -> Sampler | None:
    """Start sampling ``run`` every ``seconds`` (None: not at all); the sampler stops and is
    joined before the run ends. Without psutil this warns (naming the extra) and samples nothing."""
    if seconds is None:
        return None
    try:
        import psutil  # noqa: F401
    except ImportError:
        _log.warning("labbook: system metrics need psutil: pip install 'labbook[system]'; "
                     "run %s logs none", run.id[:8])
        return None
    sampler = Sampler(run.log_metrics, seconds)
    resumed = run.record.metrics.get("system/cpu_utilization_percentage")
    sampler.samples = resumed.step + 1 if resumed is not None else 0  # a resumed run goes on
    run.before_end.append(lambda _run: sampler.stop())
    sampler.start()
    return sampler


class Sampler:
    """A daemon thread logging :func:`sample` every ``seconds`` through ``log`` (a run's
    ``log_metrics``) at steps 0, 1, 2…; the first sample is taken at once."""

    def __init__(self, log: Callable[..., None], seconds: float = DEFAULT_INTERVAL) -> None:
        self.log = log
        self.seconds = seconds
        self.samples = 0
        self._stop = threading.Event()
        self._probe = _Probe()
        self._thread = threading.Thread(target=self._loop, name="labbook-system-metrics", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it (a sample being logged is finished first)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()
        self._probe.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _loop(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self.log(self._probe.sample(), step=self.samples)
            except Exception as exc:  # the run ended under us, or the branch is unwritable
                if not self._stop.is_set():
                    _log.warning("labbook: system metrics stopped: %s", exc)
                return
            self.samples += 1
            next_at += self.seconds
            self._stop.wait(max(0.0, next_at - time.monotonic()))


class _Probe:
    """Reads the machine: psutil for CPU, memory, disk, network; NVML for GPUs if present."""

    def __init__(self) -> None:
        import psutil

        self.psutil = psutil
        psutil.cpu_percent(interval=None)  # the first call only sets the baseline
        self.disk_path = os.getcwd()
        self.net_start = _net_bytes(psutil)
        self.nvml: Any = _open_nvml()

    def sample(self) -> dict[str, float]:
        ps = self.psutil
        memory = ps.virtual_memory()
        values = {
            "system/cpu_utilization_percentage": ps.cpu_percent(interval=None),
            "system/system_memory_usage_megabytes": (memory.total - memory.available) / _MB,
            "system/system_memory_usage_percentage": memory.percent,
        }
        try:
            disk = ps.disk_usage(self.disk_path)
            values["system/disk_usage_megabytes"] = disk.used / _MB
            values["system/disk_usage_percentage"] = disk.percent
            values["system/disk_available_megabytes"] = disk.free / _MB
        except OSError:  # the folder went away: no disk figures this time
            pass
        sent, received = _net_bytes(ps)
        values["system/network_receive_megabytes"] = (received - self.net_start[1]) / _MB
        values["system/network_transmit_megabytes"] = (sent - self.net_start[0]) / _MB
        if self.nvml is not None:
            values.update(_gpu_values(self.nvml))
        return values

    def close(self) -> None:
        if self.nvml is not None:
            with contextlib.suppress(Exception):  # already shut down: nothing to release
                self.nvml.nvmlShutdown()
            self.nvml = None


def _net_bytes(psutil: Any) -> tuple[int, int]:
    counters = psutil.net_io_counters()
    return (counters.bytes_sent, counters.bytes_recv) if counters is not None else (0, 0)


def _open_nvml() -> Any:
    """pynvml (from nvidia-ml-py) initialised, or None without the package, a driver or a GPU."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        if pynvml.nvmlDeviceGetCount() == 0:
            pynvml.nvmlShutdown()
            return None
    except Exception:  # NVMLError: no driver, no device
        return None
    return pynvml


def _gpu_values(nvml: Any) -> dict[str, float]:
    values: dict[str, float] = {}
    for i in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(i)
        reads: dict[str, Callable[[], float]] = {
            "utilization_percentage": lambda h=handle: nvml.nvmlDeviceGetUtilizationRates(h).gpu,
            "memory_usage_megabytes": lambda h=handle: nvml.nvmlDeviceGetMemoryInfo(h).used / _MB,
            "power_usage_watts": lambda h=handle: nvml.nvmlDeviceGetPowerUsage(h) / 1000,
            "temperature_celsius": lambda h=handle: nvml.nvmlDeviceGetTemperature(
                h, nvml.NVML_TEMPERATURE_GPU),
        }
        for name, read in reads.items():
            try:
                values[f"system/gpu_{i}_{name}"] = float(read())
            except Exception:  # a figure this GPU does not report
                continue
    return values
