"""GDB Remote Serial Protocol server, generic over arches (laid out like the ``gdbstub`` crate).

- ``target.py``: the contract: :class:`~guestdbg.gdb.target.DebugTarget` (what the stub asks of
  a debug session) and :class:`~guestdbg.gdb.target.GdbArch` (registers, target description).
- ``wire.py``: framing, acks, escapes, run-length encoding, the bounded frame reader.
- ``commands/``: packet bodies parsed into typed commands, one module per packet family.
- ``handlers/``: how each command is served against the target, one module per feature.
- ``features.py``: what ``qSupported``/``vCont?`` offer, derived from the target's capabilities.
- ``stop_reply.py``, ``register_codec.py``, ``error_replies.py``: reply formats.
- ``context.py`` + ``stub.py``: the per-connection state machine, bytes in, bytes out.
- ``server.py``: :class:`~guestdbg.gdb.server.GdbServer`, sockets and the connection lifecycle.
"""
