"""Limits that make hostile spec files fail fast instead of eating the machine.

A spec is data written by a person: none of these bounds is near what a real
spec needs, and each one names itself in the error it causes.
"""
MAX_FILE_BYTES = 2 * 1024 * 1024  # a spec of 2 MiB is already absurd
MAX_DEPTH = 64  # nesting of mappings / sequences / blocks
MAX_NODES = 200_000  # values after alias expansion (alias bombs)
MAX_INCLUDE_DEPTH = 16
MAX_EXPR_DEPTH = 200  # parse-tree depth of one equation or value
