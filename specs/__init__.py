"""The cell standard library (cells/*.rnn) and example specs (examples/), shipped as package data."""
