"""An emulated x86-64 KVM host: Unicorn executes the guest under a model of Linux KVM x86.

The model reproduces what guest debugging sees of the kernel (``arch/x86/kvm/x86.c`` and
``vmx/vmx.c``) behind the same :class:`guestdbg.vcpu.VmHandle`/``VcpuHandle`` interface as
``/dev/kvm``, with the same little-endian structures (:func:`guestdbg_x86.abi.layout`). Modules:
``memory`` (guest RAM shared by the vCPUs), ``paging`` (KVM_TRANSLATE), ``cpu_state``
(``kvm_regs``/``kvm_sregs`` over Unicorn registers), ``events`` (the exception queue of
KVM_GET/SET_VCPU_EVENTS), ``idt`` (delivery through the guest's IDT), ``dr_arming`` (DR0-3 as
ranged hooks and page protection), ``guest_debug`` (KVM_SET_GUEST_DEBUG), ``kvm_run`` (the
KVM_RUN loop and its exits), ``vcpu``/``vm`` (the handles) and ``factory`` (the HostFactory).
"""
