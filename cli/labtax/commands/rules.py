"""`labtax rules`: every lint rule, from the rule modules themselves (the README table is made by this)."""

import click


def markdown_table() -> str:
    from labtax.lint.rules import all_rules

    rows = ["| ID | Name | Level | What it checks | Why | How to fix |", "|---|---|---|---|---|---|"]
    for rule in all_rules():
        cells = [rule.ID, f"`{rule.NAME}`", rule.LEVEL, rule.SUMMARY, rule.WHY, rule.HINT]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"


@click.command("rules")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown"]), default="text", show_default=True)
def command(fmt):
    """List every lint rule: id, name, default level, what it checks, why, and how to fix."""
    from labtax.lint.rules import all_rules

    if fmt == "markdown":
        click.echo(markdown_table(), nl=False)
        return
    for rule in all_rules():
        click.echo(f"{rule.ID} {rule.NAME} ({rule.LEVEL}): {rule.SUMMARY}\n    fix: {rule.HINT}")
