"""The `edgefill` command line: main.py (group, registry, entry point) and one module per command.
"""
