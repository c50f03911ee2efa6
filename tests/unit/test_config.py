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


# The seven keys whose wrong type crashed lint (#24 item 19), and values read wrongly ("no" as true).
BAD_SETTINGS = [
    ('profile = ["x"]', "profile", '"default" or "instructlab"'),
    ("select = 5", "select", "an array of rule ids"),
    ("ignore = 5", "ignore", "an array of rule ids"),
    ("rules = 5", "rules", "tables of rule options"),
    ("rules = {LT011 = 5}", "LT011 in [tool.labtax.rules]", "a table of the rule's options"),
    ("teacher = 5", "teacher", "a table"),
    ("changed-files = 5", "changed-files", "a table"),
    ('duplicate-keys-fatal = "no"', "duplicate-keys-fatal", "true or false"),
    ('select = "LT001"', "select", "an array of rule ids"),
    ("[rules.LT009]\nlevel = 5", "level in [tool.labtax.rules.LT009]", '"error" or "warning"'),
    ('[rules.LT011]\nskip-version-1 = "no"', "skip-version-1 in [tool.labtax.rules.LT011]", "true or false"),
    ('[rules.LT014]\nqa-words = "many"', "qa-words in [tool.labtax.rules.LT014]", "a whole number"),
    ("[teacher]\nmodel = 5", "model in [tool.labtax.teacher]", "a model name"),
]


def test_each_wrong_typed_setting_is_a_located_error_naming_the_key(tmp_path):
    import pytest

    from labtax.errors import LabtaxError

    for text, key, fix in BAD_SETTINGS:
        (tmp_path / ".labtax.toml").write_text("# settings\n" + text + "\n")
        with pytest.raises(LabtaxError) as caught:
            load_config(tmp_path)
        message = str(caught.value)
        line = 2 + text.count("\n")  # the key is on the text's last line
        assert f".labtax.toml:{line}:" in message and key in message and fix in message, (text, message)


def test_every_bad_key_is_reported_at_once_in_pyproject(tmp_path):
    import pytest

    from labtax.errors import LabtaxError

    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.labtax]\nselect = 5\nduplicate-keys-fatal = "no"\nmax-nodes = 0\n'
    )
    with pytest.raises(LabtaxError) as caught:
        load_config(tmp_path)
    message = str(caught.value)
    assert "pyproject.toml:5" in message and "pyproject.toml:6" in message and "pyproject.toml:7" in message, message
    assert "3 bad labtax settings" in message


def test_the_schema_is_shipped_and_is_valid():
    from jsonschema import Draft202012Validator

    from labtax.config import settings_schema

    Draft202012Validator.check_schema(settings_schema())


def test_the_schema_knows_each_rules_options_by_their_defaults_types():
    """config validates rule options with the schema alone (it sits below lint and may not import the rules):
    the schema must say what each rule's DEFAULTS say, under its id and its name."""
    from labtax.config import settings_schema
    from labtax.lint.rules import all_rules

    schema = settings_schema()
    types = {bool: "boolean", int: "integer", str: "string"}
    for rule in all_rules():
        defaults = {k: v for k, v in getattr(rule, "DEFAULTS", {}).items() if v is not None}
        if not defaults:
            continue
        for key in (rule.ID, rule.NAME):
            ref = schema["$defs"]["rules"]["properties"][key]["$ref"].rsplit("/", 1)[-1]
            options = schema["$defs"][ref]["properties"]
            for option, default in defaults.items():
                expected = ["string", "boolean"] if default == "auto" else types[type(default)]
                assert options[option]["type"] == expected, (rule.ID, option)
