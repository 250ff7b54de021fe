"""GDB Remote Serial Protocol server: packet codec, stub state machine, per-feature handlers."""
