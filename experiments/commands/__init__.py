"""Sub-commands of `mte` (each: add_arguments(parser), run(args) -> int)."""
