"""The lint stage: an engine that knows no rule (engine.py), findings as plain data (findings.py), the schema
and yamllint bridges, one module per rule (rules/), and reporters apart (report/)."""
