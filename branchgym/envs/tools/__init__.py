"""Tools the envs expose: search, browse, python, and any registered in ``TOOLS`` (``.registry``;
docs/tools.md)."""
