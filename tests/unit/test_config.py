"""config: profiles, the settings file, the changed-files overlay and the command line, merged in that order."""

from labtax.config import Overrides, for_changed_files, load_config


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


def test_the_command_line_has_the_last_word(tmp_path):
    """profile -> file -> changed-files -> command line: the overrides win over all of them."""
    (tmp_path / ".labtax.toml").write_text('select = ["LT001"]\n[rules.LT022]\noffline = false\nenabled = false\n')
    overrides = Overrides(select=("LT002",), ignore=("LT019",), yaml_rules="{}", check_documents=True, offline=True)
    config = load_config(tmp_path, changed=True, overrides=overrides)
    assert config.select == ["LT002"] and config.ignore == ["LT019"]
    assert config.rules["LT011"]["config"] == "{}"
    assert config.rules["LT022"] == {"offline": True, "enabled": True}


def test_no_overrides_leave_the_files_settings(tmp_path):
    (tmp_path / ".labtax.toml").write_text("[rules.LT022]\noffline = true\n")
    assert load_config(tmp_path, overrides=Overrides()).rules["LT022"] == {"offline": True}
    generate = load_config(tmp_path, overrides=Overrides(offline=True))  # generate --offline
    assert generate.rules["LT022"] == {"offline": True}
