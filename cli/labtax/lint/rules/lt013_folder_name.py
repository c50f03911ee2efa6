"""LT013 folder-name: folders of the taxonomy path are lowercase snake_case."""

import re

from labtax.taxonomy.kinds import folders_below_tree

ID = "LT013"
NAME = "folder-name"
LEVEL = "warning"  # naming style is advice: InstructLab's own tree has folders like STEM
SCOPE = "path"
SUMMARY = "Folder names in the taxonomy path are lowercase snake_case (a-z, 0-9, single underscores)."
WHY = "The path becomes the leaf's identity in data and reports; mixed case and spaces collide across file systems."
HINT = "rename the folder to lowercase snake_case, e.g. 'Object-Oriented Design' -> 'object_oriented_design'"
DEFAULTS = {"pattern": r"[a-z0-9]+(_[a-z0-9]+)*"}


def check_path(relpath, ctx, explicit=False):
    pattern = re.compile(ctx.options["pattern"])
    for folder in folders_below_tree(relpath):
        if not pattern.fullmatch(folder):
            suggestion = re.sub(r"[^a-z0-9]+", "_", folder.lower()).strip("_")
            yield ctx.finding(
                relpath, 1, 1, f"folder '{folder}' is not lowercase snake_case", f"rename it to '{suggestion}'"
            )
            return
