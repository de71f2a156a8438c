"""The Lark grammar of the .rnn DSL and of cell equations (shipped as package data)."""
