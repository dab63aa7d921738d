from labbook.cli import command

raise SystemExit(command())
