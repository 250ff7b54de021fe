"""One foundation for every emulated KVM host: a CPU emulator under a model of a KVM kernel.

An arch's emulated host implements :class:`guestdbg.vcpu.VmHandle` and
:class:`~guestdbg.vcpu.VcpuHandle` byte for byte as ``/dev/kvm`` does, and should be nothing but
its model of its kernel and its engine. What every such host needs is here, with the semantics
of ``/dev/kvm`` where the VMM can see them:

* :mod:`.memory` - guest RAM as KVM memory slots, one buffer the VMM and every vCPU's engine
  share, with write listeners so the vCPUs drop translated code the VMM overwrote;
* :mod:`.image` - reading a guest ELF (segments, entry, symbols): the tree's one ELF reader;
* :mod:`.vcpu` - the vCPU fd: ``vcpu->mutex`` around every ioctl (another thread waits),
  KVM_RUN's ``immediate_exit`` and signal (the kick), structure sizes;
* :mod:`.run_area` - the ``kvm_run`` page in the arch's layout;
* :mod:`.vm` - the VM fd: memory, vCPUs, capabilities;
* :mod:`.unicorn` - Unicorn as the engine: typed names, register banks, count-limited slices and
  the instruction counter that make kicks land between two instructions.
"""
