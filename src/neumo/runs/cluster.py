"""Ray, imported only when asked for: connect to a cluster (or start a local one) and map a function over
jobs, one CPU each. Used by memory sweeps, ``neumo lab --ray`` and ``neumo study run --ray``."""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from neumo.errors import MissingDependencyError, NeumoError


def connect(address: str):
    """``ray`` connected to ``address`` (``auto``, ``ray://host:10001``, ...) or to a new local cluster
    (``local``). Connecting twice in one process reuses the first connection."""
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("--ray needs the 'ray' package: pip install 'neumo[ray]'") from None
    if not isinstance(address, str) or not address.strip():
        raise NeumoError("--ray needs an address: 'local' to start a cluster here, 'auto' or ray://host:port")
    if ray.is_initialized():
        return ray
    try:
        if address == "local":
            ray.init(
                address="local",
                num_cpus=os.cpu_count() or 1,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    except ConnectionError as e:
        raise NeumoError(
            f"could not reach a Ray cluster at {address!r} ({e}); start one with 'ray start --head' or pass --ray local"
        ) from None
    return ray


def ray_map(
    fn: Callable[..., Any], jobs: Sequence[tuple], address: str, on_result: Callable[[int, Any], None] | None = None
) -> list[Any]:
    """``[fn(*job) for job in jobs]`` as Ray tasks of one CPU each, in the jobs' order; ``on_result(i, r)``
    is called as each finishes (completion order)."""
    ray = connect(address)
    remote = ray.remote(num_cpus=1)(fn)
    refs = [remote.remote(*job) for job in jobs]
    index = {ref: i for i, ref in enumerate(refs)}
    out: list[Any] = [None] * len(refs)
    pending = list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        i = index[ready[0]]
        out[i] = ray.get(ready[0])
        if on_result:
            on_result(i, out[i])
    return out
