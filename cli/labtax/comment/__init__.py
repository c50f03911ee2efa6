"""The pull-request comment: render (render.py, where ALL escaping lives) and post (post.py).

inputs.py reads the files other commands wrote (summary, samples, rejected, lint and train
reports), tolerating missing or damaged pieces so that a comment can always be shown.
"""

MARKER = "<!-- labtax-bot -->"
GITHUB_COMMENT_LIMIT = 65536
