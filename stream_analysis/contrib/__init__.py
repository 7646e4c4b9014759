"""Optional integrations: each module needs an extra of its own (see its docstring)."""
