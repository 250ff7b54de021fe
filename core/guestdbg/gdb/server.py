"""The GDB server: a listening socket, one connection at a time, one thread.

Security: the default is a Unix socket (mode 0600) or TCP on a loopback address. Any other
address needs ``allow_remote=True`` and is announced with a warning, because whoever reaches
the port can read and write guest memory (QEMU ``-s`` listens on every interface;
docs/reference/peers.md §5). There is no authentication; put it behind a Unix socket or an SSH
tunnel.

Lifecycle: on accept the guest is stopped (``target.attach``). ``D``, ``k``, or the connection
lost at any moment (guest running or not) detach exactly once, after which the next GDB may
connect. :meth:`GdbServer.close` detaches a connected debugger the same way.

Waiting while the guest is stopped: the server thread blocks in ``recv`` alone, one system
call per packet on GDB's per-stop path; :meth:`GdbServer.close` shuts the connection down to
wake it.

Waiting while the guest runs: the server thread alternates a non-blocking ``select`` on the
socket (and the close wakeup) with ``target.wait_stop(poll_interval)``. A stop is therefore
reported the moment the target has it (``wait_stop`` blocks on the target's own queue, so the
breakpoint-hit path pays no polling delay), while a 0x03 or a disconnect is noticed within
``poll_interval`` (20 ms). That costs 50 wake-ups a second while the guest runs, not a busy
loop, and needs nothing from the target beyond ``wait_stop``. (A target exposing a stop file
descriptor would let one ``select`` wait on both; ``DebugTarget`` has none today.)
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import selectors
import socket
import stat
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import GuestDebugError, InvalidRequest
from .context import StubState
from .features import DEFAULT_PACKET_SIZE
from .stub import GdbStub
from .target import DebugTarget

log = logging.getLogger(__name__)

Address = str | tuple[str, int]
"""A Unix socket path, or ``(host, port)`` for TCP (port 0: any free port)."""

POLL_INTERVAL = 0.02
SPIN = 0.0
"""How long the server polls for GDB's next packet before blocking (see ``GdbServer._recv``);
0 blocks at once."""
RECV_SIZE = 65536


class RemoteExposureWarning(UserWarning):
    """The stub listens on an address other hosts can reach."""


def is_loopback(host: str) -> bool:
    """True when every address ``host`` resolves to is a loopback address."""
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


class GdbServer:
    """Serves one :class:`DebugTarget` to GDB.

    ``GdbServer(target, ("127.0.0.1", 0)).start()`` runs it in a thread; ``bound_address``
    gives the real port; ``close()`` stops it (detaching a connected GDB).
    """

    def __init__(
        self,
        target: DebugTarget,
        address: Address,
        *,
        allow_remote: bool = False,
        packet_size: int = DEFAULT_PACKET_SIZE,
        poll_interval: float = POLL_INTERVAL,
        spin: float = SPIN,
        run_length: bool = False,
        on_attach: Callable[[], None] | None = None,
        on_detach: Callable[[], None] | None = None,
        trace: int = 0,
    ) -> None:
        """``on_attach()`` runs on the server's thread once a GDB is attached (the guest
        stopped), ``on_detach()`` once it has been detached (every point removed, the guest
        running on): a VMM's hooks for "a debugger came" and "it left". An exception in one is
        logged and changes nothing else.

        ``trace``: keep the last ``trace`` reads from GDB and writes to it of the current
        connection in :attr:`trace` (for explaining a failure after the fact); 0, the default,
        keeps nothing and costs nothing per packet."""
        self.target = target
        self.on_attach = on_attach
        self.on_detach = on_detach
        self.packet_size = packet_size
        self.run_length = run_length
        self.spin = spin
        self.poll_interval = poll_interval
        self.connections = 0
        """Connections served so far (finished or current)."""
        self.stub: GdbStub | None = None
        """The current connection's stub (None between connections)."""
        self.connection: socket.socket | None = None
        """The current connection's socket, for diagnostics (None between connections)."""
        self.trace: deque[tuple[float, str, bytes]] | None = (
            deque(maxlen=2 * trace) if trace > 0 else None
        )
        """With ``trace``: ``(time.monotonic(), "<" or ">", bytes)`` per read from GDB
        (``<``) and write to it (``>``), the current connection's last ``2 * trace``; cleared
        when a connection is accepted."""
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._serving = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._recv_buffer = memoryview(bytearray(RECV_SIZE))
        """What every ``recv`` of the server thread fills (see ``_recv_into``)."""
        self._unix_path: str | None = None
        self._listener = self._listen(address, allow_remote)
        self.bound_address: Address = self._listener.getsockname()
        if isinstance(self.bound_address, list | tuple):
            self.bound_address = (str(self.bound_address[0]), int(self.bound_address[1]))

    # -- setup -------------------------------------------------------------------------------

    def _listen(self, address: Address, allow_remote: bool) -> socket.socket:
        if isinstance(address, str):
            return self._listen_unix(address)
        host, port = address
        if not is_loopback(host):
            if not allow_remote:
                raise InvalidRequest(
                    f"refusing to expose the GDB stub on {host or '*'}:{port}: anyone who "
                    "reaches it can read and write guest memory; use 127.0.0.1, a Unix "
                    "socket, or pass allow_remote=True"
                )
            msg = f"GDB stub listening on {host or '*'}:{port}, reachable from other hosts"
            warnings.warn(msg, RemoteExposureWarning, stacklevel=3)
            log.warning("%s (no authentication)", msg)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(1)
        except OSError as e:
            sock.close()
            raise InvalidRequest(f"cannot listen on {host}:{port}: {e.strerror}") from None
        return sock

    def _listen_unix(self, path: str) -> socket.socket:
        with contextlib.suppress(FileNotFoundError):
            mode = os.stat(path).st_mode
            if not stat.S_ISSOCK(mode):
                raise InvalidRequest(f"{path} exists and is not a socket")
            if _unix_socket_in_use(path):
                raise InvalidRequest(f"{path}: another server is listening there")
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            os.chmod(path, 0o600)
            sock.listen(1)
        except OSError as e:
            sock.close()
            raise InvalidRequest(f"cannot listen on {path}: {e.strerror}") from None
        self._unix_path = path
        return sock

    # -- running -----------------------------------------------------------------------------

    def start(self) -> threading.Thread:
        """Serve in a daemon thread; returns it."""
        t = threading.Thread(target=self.serve_forever, name="guestdbg-gdb", daemon=True)
        self._thread = t
        t.start()
        return t

    def serve_forever(self) -> None:
        """Accept and serve connections one after another until :meth:`close`."""
        self._serving = True
        try:
            while not self._closed.is_set():
                conn = self._accept()
                if conn is None:
                    break
                self.connections += 1
                self._serve(conn)
        finally:
            self._serving = False
            self._release()

    def close(self) -> None:
        """Stop serving: a connected GDB is detached and the listener closed. Waits for the
        thread :meth:`start` made; a ``serve_forever`` running elsewhere returns soon after."""
        self._closed.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        conn = self.connection
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join()
        if not self._serving:
            self._release()

    def __enter__(self) -> GdbServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _release(self) -> None:
        for sock in (self._listener, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                sock.close()
        if self._unix_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._unix_path)
            self._unix_path = None

    def _accept(self) -> socket.socket | None:
        with selectors.DefaultSelector() as sel:
            sel.register(self._listener, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            while not self._closed.is_set():
                for key, _ in sel.select():
                    if key.fileobj is self._wake_r:
                        return None
                    try:
                        conn, peer = self._listener.accept()
                    except OSError as e:
                        log.warning("accept failed: %s", e)
                        continue
                    log.info("GDB connected from %s", peer or "unix socket")
                    return conn
        return None

    def _serve(self, conn: socket.socket) -> None:
        if conn.family in (socket.AF_INET, socket.AF_INET6):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            stub = GdbStub(self.target, packet_size=self.packet_size, run_length=self.run_length)
            stub.connection_made()
        except GuestDebugError as e:
            log.error("cannot attach the debugger: %s", e)
            conn.close()
            return
        except Exception:
            log.exception("cannot attach the debugger")
            conn.close()
            return
        self.stub = stub
        self.connection = conn
        self._notify(self.on_attach, "on_attach")
        try:
            if self.trace is None:
                self._loop(conn, stub)
            else:
                self.trace.clear()
                self._loop(_TracedConnection(conn, self.trace), stub)  # type: ignore[arg-type]
        except OSError as e:
            log.info("GDB connection lost: %s", e)
        except GuestDebugError as e:
            log.error("closing the GDB connection: %s", e)
        except Exception:
            log.exception("closing the GDB connection after an internal error")
        finally:
            stub.connection_lost()
            with contextlib.suppress(OSError):
                conn.close()
            self.stub = None
            self.connection = None
            log.info("GDB disconnected; waiting for the next one")
            self._notify(self.on_detach, "on_detach")

    @staticmethod
    def _notify(callback: Callable[[], None] | None, name: str) -> None:
        if callback is None:
            return
        try:
            callback()
        except Exception:
            log.exception("the VMM's %s callback failed", name)

    def _recv(self, conn: socket.socket) -> bytes:
        """The next bytes from GDB. A debugger's next packet usually follows our reply almost
        at once, while waking a thread blocked in ``recv`` costs a cross-core wake-up (an IPI,
        dear in a VM) when GDB runs on another core. With ``spin`` set the server polls that
        long first, then blocks - adaptive polling, as the kernel's busy-poll does; it costs
        at most ``spin`` of CPU per packet. The default blocks at once: on a machine whose
        cores are all busy the polling thread holds a core the client needs to send that very
        packet, and there ``bench/vs_qemu.py`` measured no gain from polling, rather a loss."""
        if self.spin > 0:
            data = _spin_recv(conn, self._recv_buffer, self.spin)
            if data is not None:
                return data
        return _recv_into(conn, self._recv_buffer)

    def _loop(self, conn: socket.socket, stub: GdbStub) -> None:
        """While the guest is stopped the loop blocks in ``recv`` alone (one system call per
        packet; :meth:`close` shuts the socket down to wake it); while it runs, a non-blocking
        ``select`` alternates with ``wait_stop``."""
        target = self.target
        with selectors.DefaultSelector() as sel:
            sel.register(conn, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            while True:
                if stub.state is StubState.CLOSING or self._closed.is_set():
                    return
                if stub.state is StubState.RUNNING:
                    ready = sel.select(0)
                    if not ready:
                        ev = target.wait_stop(self.poll_interval)
                        if ev is not None:
                            conn.sendall(stub.report_stop(ev))
                        continue
                    if any(key.fileobj is self._wake_r for key, _ in ready):
                        return
                data = self._recv(conn)
                if not data:
                    return
                out = stub.receive(data)
                if out:
                    conn.sendall(out)


class _TracedConnection:
    """A connection socket that records what passes (``GdbServer(trace=N)``); the untraced
    loop talks to the socket itself."""

    def __init__(self, conn: socket.socket, trace: deque[tuple[float, str, bytes]]) -> None:
        self._conn = conn
        self._trace = trace

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def fileno(self) -> int:
        return self._conn.fileno()

    def recv_into(self, buffer: memoryview) -> int:
        n = self._conn.recv_into(buffer)
        self._trace.append((time.monotonic(), "<", bytes(buffer[:n]) if n else b"(closed)"))
        return n

    def sendall(self, data: bytes) -> None:
        self._trace.append((time.monotonic(), ">", data))
        self._conn.sendall(data)


def format_trace(
    trace: Iterable[tuple[float, str, bytes]] | None, since: float | None = None
) -> str:
    """A server's :attr:`GdbServer.trace` as lines, times relative to ``since`` (default:
    the first entry)."""
    entries = list(trace) if trace is not None else []  # a copy: the server thread appends
    if not entries:
        return "(no packets traced)"
    t0 = entries[0][0] if since is None else since
    return "\n".join(f"{t - t0:+9.4f} {d} {data!r}" for t, d, data in entries)


def _recv_into(conn: socket.socket, buffer: memoryview) -> bytes:
    """``conn.recv(len(buffer))`` without its allocation: what came, copied out of
    ``buffer``. ``socket.recv(n)`` allocates an ``n``-byte object before it reads and shrinks
    it to what came; on the server thread that was a 64 KiB allocation per packet and per
    empty poll of :func:`_spin_recv`, each leaving its unused tail as a hole in the thread's
    malloc arena, and the process grew by that fragmentation in a long session
    (docs/reference/unicorn.md §12)."""
    n = conn.recv_into(buffer)
    return bytes(buffer[:n])


def _spin_recv(conn: socket.socket, buffer: memoryview, spin: float) -> bytes | None:
    """Poll the socket without sleeping for up to ``spin`` seconds; None if nothing came."""
    deadline = time.perf_counter() + spin
    conn.setblocking(False)
    try:
        while True:
            try:
                return _recv_into(conn, buffer)
            except BlockingIOError:
                if time.perf_counter() > deadline:
                    return None
    finally:
        conn.setblocking(True)


def _unix_socket_in_use(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True
