"""What a branch changed, as leaves: git access (git.py) and changed-leaf detection (leaves.py).

labtax.select turns the changed leaves into a command's Selection (`--changed`)."""
