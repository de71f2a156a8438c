"""Triton kernel generation and launch for the recurrences of compiled cells."""
