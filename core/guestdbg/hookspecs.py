"""The arch plugin contract. These docstrings are the porter's reference.

An arch plugin is a module (or object) with ``@hookimpl`` functions, registered under the entry
point group ``guestdbg.arch``::

    [project.entry-points."guestdbg.arch"]
    myarch = "guestdbg_myarch.plugin"

The core never imports an arch package: it finds plugins only through that group (see
:mod:`guestdbg.plugins`). Hooks are called at discovery and at session setup, never per debug
exit. What they return are plain objects (see :mod:`guestdbg.arch`) whose methods the exit path
calls directly.

Hooks that take an ``arch`` (the :class:`~guestdbg.arch.ArchInfo` the session chose) are
``firstresult``: a plugin returns ``None`` for arches that are not its own, and the first
non-``None`` answer wins. pluggy asks implementations in reverse registration order (the plugin
registered last is asked first), so a plugin registered after another overrides its answers:
that is how ``extra_plugins`` of :func:`guestdbg.plugins.load` and of the conformance kit win
over the installed plugins. An implementation marked ``@hookimpl(tryfirst=True)`` is asked
before every unmarked one, whatever the registration order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .arch import ArchInfo, ArchVcpuDebug, CoreInfo, HostFactory, VcpuDebugRequest
    from .demo.guest import DemoGuest
    from .gdb.target import GdbArch
    from .host_report import HostReport
    from .testing.profile import ConformanceProfile

PROJECT = "guestdbg"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def guestdbg_arch() -> ArchInfo:  # type: ignore[empty-body]
    """Announce the arch this plugin serves.

    Called once per plugin when the plugin manager loads. Return an :class:`ArchInfo`: the arch's
    name, the Linux KVM host arch it serves (which selects the ioctl encoding), its cores with
    their static :class:`DebugCapabilities`, its exception numberspaces with the equivalence table
    between them, and a factory for its uapi layout (the cffi declarations of its
    ``kvm_regs``, ``kvm_sregs``, ``kvm_guest_debug_arch`` and ``kvm_debug_exit_arch``).
    All plugins' answers are collected; two plugins may not claim the same arch name.
    """


@hookspec(firstresult=True)
def guestdbg_vcpu_debug(request: VcpuDebugRequest) -> ArchVcpuDebug | None:
    """Bind the arch's debug operations to one vCPU; called once per vCPU at session setup.

    Read here whatever the kernel reports per vCPU and the exit path needs: the
    software-breakpoint instruction (on PowerPC ``KVM_REG_PPC_DEBUG_INST``; never hard-code it),
    the capabilities this kernel really offers (e.g. x86 ``KVM_CAP_SET_GUEST_DEBUG2`` for
    BLOCKIRQ). The returned object's ``encode_guest_debug`` turns the host's hardware points and
    the step flag into ``kvm_guest_debug`` bytes (or None: issue no KVM_SET_GUEST_DEBUG at all);
    ``decode_exit`` turns ``kvm_debug_exit_arch`` into a :class:`DebugEvent`; ``guest_verdict``
    says how an unclaimed event is re-injected (exceptions named in the arch's numberspaces) or
    why it is dropped; ``inject`` delivers it. Optional members the session looks for:
    ``after_guest_debug()`` (a kernel that applies part of the new state only at a later
    register write), ``step_targets()`` (when ``caps.step_via_sw``: where the instruction at the
    PC can continue), ``resume_past_hw_break(pc)`` (the hardware's own way past an instruction
    breakpoint for one instruction, used for a hit whose condition is false instead of a single
    step with the breakpoint disarmed), ``execute_in_place(pc, fetch)`` (the arch carries out
    a register-only instruction under a breakpoint whose condition was false itself, so the
    vCPU goes on without a step). ``caps`` decides the rest: slot counts, watch kinds and
    lengths, ``watch_before_access`` (the session steps an access over its own watchpoint before
    going on), ``hw_break_via_sw``. ``request.policy`` is the ownership policy the session asked
    for. Return ``None`` when ``request.arch`` is not this plugin's arch.
    """


@hookspec(firstresult=True)
def guestdbg_gdb_arch(arch: ArchInfo, core: CoreInfo) -> GdbArch | None:
    """The GDB register layout and target description for ``core``.

    Called once when a GDB stub is set up. Return a :class:`~guestdbg.gdb.target.GdbArch`: the
    target description XML (GDB feature names), the register list in ``g`` packet order, which
    registers are PC, SP and the status register to expedite in stop replies, and how each is
    read from and written to a vCPU; per core, so cores of one arch may differ in width and
    register files (``CoreInfo.register_bits``). Return ``None`` for another plugin's arch.
    """


@hookspec
def guestdbg_emulated_hosts() -> list[HostFactory]:  # type: ignore[empty-body]
    """Emulated KVM hosts this plugin offers (a CPU emulator under a model of the kernel).

    Called when the command line or a test looks for a host by name. An emulated host implements
    the same :class:`~guestdbg.vcpu.VmHandle` / ``VcpuHandle`` interface as ``/dev/kvm``, byte for
    byte, so sessions and the GDB stub run unchanged on it. All answers are collected.
    """


@hookspec
def guestdbg_kvm_hosts() -> list[HostFactory]:  # type: ignore[empty-body]
    """Ways to boot a bare-metal guest ELF on this machine's real ``/dev/kvm``.

    Called when the command line looks for a host by name (``guestdbg serve --host kvm``).
    ``create_vm(elf_path, smp=1, **options)`` returns a VM on ``/dev/kvm`` with the guest loaded
    and every vCPU at its entry point, halted until its first KVM_RUN - what an emulated host's
    factory returns, on the real device. Return ``[]`` when this machine's KVM is not of the
    plugin's host arch. All answers are collected.
    """


@hookspec(firstresult=True)
def guestdbg_demo(arch: ArchInfo, core: CoreInfo) -> DemoGuest | None:
    """The sample guest ``guestdbg demo`` runs on ``core``'s emulated host.

    Called once when the demo starts. Return a :class:`~guestdbg.demo.guest.DemoGuest`: the
    guest's source and how to build it, the symbols each demo step uses (a function for a
    software breakpoint, a label for a hardware one, a counter to watch, where the guest runs
    its own breakpoint instruction and how its handler counts it), the commands GDB needs for
    this arch, and one sentence per step on what the arch's hardware and KVM did. Return
    ``None`` for another plugin's arch, or when the plugin has no demo guest.
    """


@hookspec(firstresult=True)
def guestdbg_conformance(arch: ArchInfo, core: CoreInfo) -> ConformanceProfile | None:
    """What the conformance kit (:mod:`guestdbg.testing`) needs to exercise ``core``.

    Called only by the kit, once per core it tests; never by a session. Return a
    :class:`~guestdbg.testing.profile.ConformanceProfile`: a factory for a fresh VM (guest loaded
    and halted) whose guest loops forever over ``code_addrs``, reading and writing
    ``data_addr``; a guest address in no memory slot; and the guest's own debug events as the
    ``kvm_run`` images the kernel writes for them, each with the exception this plugin documents
    ``guest_verdict`` re-injects. Import :mod:`guestdbg.testing.profile` inside the hook, so
    that loading the plugin for a session does not import the kit. Return ``None`` for another
    plugin's arch, or when the plugin offers no host the kit can run. Raise
    :class:`~guestdbg.testing.profile.ProfileUnavailable` when this core's host is missing from
    this installation only (the kit skips the core's VM checks with the message).
    """


@hookspec(firstresult=True)
def guestdbg_host_report(arch: ArchInfo, core: CoreInfo) -> HostReport | None:
    """What this machine's ``/dev/kvm`` really delivers for ``core`` (``guestdbg plugins
    --probe``).

    Called only on request, never by a session. Return a :class:`~guestdbg.host_report.HostReport`:
    the capabilities the session's ``guestdbg_vcpu_debug`` would give a vCPU on this host,
    with what the host does not deliver refused and why, and the probe's findings. Return
    ``None`` for another plugin's arch, or when this machine's KVM is not of ``arch.kvm_host_arch``.
    """
