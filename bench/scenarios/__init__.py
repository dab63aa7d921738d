"""What labbook is asked to do: builds (cold, no-op, edits, -j scaling), `labbook serve`, sweeps."""
