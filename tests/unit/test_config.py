"""config: profiles, the settings file, and the changed-files overlay, merged in that order."""

from labtax.config import for_changed_files, load_config


def test_instructlab_changed_files_overlay_checks_the_latest_schema(tmp_path):
    config = load_config(tmp_path, profile="instructlab")
    assert config.rules.get("LT001", {}).get("version", "own") == "own"
    for_changed_files(config)
    assert config.rules["LT001"]["version"] == "latest"
    assert config.rules["LT011"]["skip-version-1"] is False


def test_default_profile_has_no_overlay_and_file_settings_apply(tmp_path):
    (tmp_path / ".labtax.toml").write_text('ignore = ["LT019"]\n[rules.LT014]\nqa-words = 10\n')
    config = for_changed_files(load_config(tmp_path))
    assert config.ignore == ["LT019"] and config.rules["LT014"] == {"qa-words": 10}
    assert "LT001" not in config.rules


def test_a_named_profile_ignores_the_files_rule_tweaks(tmp_path):
    (tmp_path / ".labtax.toml").write_text("[rules.LT014]\nqa-words = 10\n")
    assert "LT014" not in load_config(tmp_path, profile="instructlab").rules
