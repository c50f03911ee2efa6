"""One module per command, each exposing `command` (a click command)."""
