"""Lambda SnapStart runtime hooks, registered only where the runtime provides them.

Under SnapStart, Lambda runs a function's initialisation once, when a version is published,
snapshots the memory, and restores that one snapshot into every new execution environment. What
initialisation made unique (random state, id pools, clients with their connections and
credentials) is then shared by all of them, and what it read (the production pointer) may be hours
old. The Lambda Python runtime ships `snapshot_restore_py`; elsewhere (tests, local mode, a
function without SnapStart) it is absent and nothing is registered. Standard library only: predict
imports this on its cold-start path.
"""

from __future__ import annotations

from collections.abc import Callable


def register_snapstart_hooks(*, before_snapshot: Callable[[], object], after_restore: Callable[[], object]) -> bool:
    """Register both hooks with the runtime; False (nothing registered) outside a SnapStart runtime."""
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return False
    register_before_snapshot(before_snapshot)
    register_after_restore(after_restore)
    return True
