"""LT012 file-name: a leaf file is named exactly qna.yaml; other YAML files in the trees are errors."""

from pathlib import PurePosixPath

from labtax.taxonomy.kinds import LEAF_FILE, tree_of

ID = "LT012"
NAME = "file-name"
LEVEL = "error"
SCOPE = "path"
SUMMARY = (
    "Files in the trees are named exactly qna.yaml; qna.yml, QNA.yaml and other stray *.yaml/*.yml files are errors."
)
WHY = "InstructLab silently skips a misnamed leaf, so the contribution does nothing and nobody notices."
HINT = "rename the file to qna.yaml (one per leaf folder)"
DEFAULTS = {"stray-files": True}  # also flag non-leaf YAML files found under the trees


def check_path(relpath, ctx, explicit=False):
    name = PurePosixPath(relpath).name
    if name == LEAF_FILE:
        return
    if name.lower() in ("qna.yaml", "qna.yml"):
        yield ctx.finding(relpath, 1, 1, f"leaf file is named '{name}'; it must be exactly '{LEAF_FILE}'")
    elif explicit or (ctx.options["stray-files"] and tree_of(relpath)):
        yield ctx.finding(
            relpath,
            1,
            1,
            f"stray YAML file '{name}' in the taxonomy; only '{LEAF_FILE}' files are read",
            "rename it to qna.yaml if it is a leaf, or move it out of the taxonomy trees",
        )
