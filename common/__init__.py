"""The shared kernel below every other package: what envs, agents, probes and experiments all
build on, importing nothing from them.

- :mod:`common.registry`: ``Registry``, the one type behind every extension point's registry;
- :mod:`common.validate`: the field checks of every config class (``check_int``,
  ``check_number``, ``check_choice``, ``FieldChecker``);
- :mod:`common.limits`: upper bounds on sizes (``check_bytes``, ``MAX_POINTS``, grid limits) and
  ``short_repr`` for quoting a user's value in an error message;
- :mod:`common.files`: atomic writes (``atomic_write``, ``atomic_write_text`` ...),
  ``current_umask`` and ``file_mode``, the mode a new file gets under it.
"""
