"""Seeded generators of memory tasks (finite-state, recall, arithmetic, cognitive); see :mod:`.base`."""

from neumo.memory.tasks.base import IGNORE, Task, TaskBatch, make_task, register_task, task_class, task_names, task_rng

__all__ = ["IGNORE", "Task", "TaskBatch", "make_task", "register_task", "task_class", "task_names", "task_rng"]
