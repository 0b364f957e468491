"""Sweeps: a grid of settings, each trained and probed in its own run folder, gathered in one table.

- :mod:`experiments.sweep.grid`: the grid language (which names a grid may set, how values are
  read and checked, :class:`Grid` and its points, grid files and ``--set`` / ``--seeds``);
- :mod:`experiments.sweep.engine`: :func:`run_sweep` (the points not yet done, on a backend,
  each recorded as it finishes; tensorboard HParams records) and the folder layout
  (:class:`SweepPaths`);
- :mod:`experiments.sweep.groups`: the units of work (:func:`plan_units`): compatible supervised
  points trained together as one ensemble, spread over the backend's workers;
- :mod:`experiments.sweep.table`: the results table (results.csv / results.json) and the
  atomic JSON files.

Every public name of the four is importable from ``experiments.sweep`` itself.
"""

from multitask_evidence.experiments.sweep.engine import (
    SweepPaths,
    SweepResult,
    check_point_options,
    default_point_fn,
    run_sweep,
    write_missing_hparams,
)
from multitask_evidence.experiments.sweep.grid import (
    RESERVED,
    SUPERVISED,
    ConfigResolver,
    Grid,
    Point,
    algo_names,
    coerce,
    coerce_value,
    default_config_class,
    grid_from_cli,
    jsonable,
    load_grid_file,
    parse_grid,
    parse_seeds,
    parse_set,
    point_id,
    task_fields,
    union,
)
from multitask_evidence.experiments.sweep.groups import plan_units
from multitask_evidence.experiments.sweep.table import (
    dumps,
    flatten_metrics,
    load_results,
    read_record,
    read_rows,
    table_rows,
    write_table,
)

__all__ = [
    "RESERVED",
    "SUPERVISED",
    "ConfigResolver",
    "Grid",
    "Point",
    "SweepPaths",
    "SweepResult",
    "algo_names",
    "check_point_options",
    "coerce",
    "coerce_value",
    "default_config_class",
    "default_point_fn",
    "dumps",
    "flatten_metrics",
    "grid_from_cli",
    "jsonable",
    "load_grid_file",
    "load_results",
    "parse_grid",
    "parse_seeds",
    "parse_set",
    "plan_units",
    "point_id",
    "read_record",
    "read_rows",
    "run_sweep",
    "table_rows",
    "task_fields",
    "union",
    "write_missing_hparams",
    "write_table",
]
