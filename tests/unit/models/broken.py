"""A module that fails when imported."""

raise RuntimeError("broken on purpose")
