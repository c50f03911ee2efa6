"""changes.leaves._classify: changed files put in their place, step 1 of the changed-leaf detection."""

from pathlib import Path

from labtax.changes.git import ChangeSet, FileChange
from labtax.changes.leaves import _classify


def changeset(*changes: FileChange) -> ChangeSet:
    return ChangeSet(Path("."), "main", "test", "abc", "def", "feature", False, list(changes))


def test_each_kind_of_file_lands_in_its_place():
    found = _classify(
        changeset(
            FileChange("added", "compositional_skills/a/qna.yaml"),
            FileChange("modified", "compositional_skills/b/qna.yml"),
            FileChange("modified", "compositional_skills/c/attribution.txt"),
            FileChange("modified", "documents/x.md"),
            FileChange("deleted", "compositional_skills/.hidden/qna.yaml"),
        ),
        "",
    )
    assert {p: c.status for p, c in found.leaves.items()} == {"compositional_skills/a/qna.yaml": "added"}
    assert found.stray == {"compositional_skills/b/qna.yml"}
    assert found.attributions == {"compositional_skills/c/qna.yaml": "attribution.txt modified"}
    assert found.others == {"documents/x.md": "modified", "compositional_skills/.hidden/qna.yaml": "deleted"}


def test_a_leaf_renamed_into_something_else_is_a_deletion_plus_an_addition():
    found = _classify(changeset(FileChange("renamed", "notes/qna.yaml", "knowledge/a/qna.yaml", 100)), "")
    assert {p: c.status for p, c in found.leaves.items()} == {"knowledge/a/qna.yaml": "deleted"}
    assert found.others == {"notes/qna.yaml": "added"}


def test_paths_outside_the_taxonomy_prefix_are_ignored_and_moves_in_are_additions():
    found = _classify(changeset(FileChange("renamed", "tax/knowledge/a/qna.yaml", "elsewhere/qna.yaml", 100)), "tax/")
    assert {p: c.status for p, c in found.leaves.items()} == {"knowledge/a/qna.yaml": "added"}
