"""Checking the emulated e500mc host against QEMU with random guest programs (issue 12).

* ``generator`` - seeded random e500mc programs with their own interrupt handlers;
* ``mix`` - the instruction mix the generator draws from;
* ``rsp`` - a raw GDB remote-protocol client; ``qemu_oracle`` - QEMU's ppce500 as the reference;
* ``emulated`` - the same program on the emulated host, through a guestdbg ``Session``;
* ``known`` - the differences the kernel or the hardware explain (``docs/fidelity.md``);
* ``differential`` - both runs stop for stop, compared and tallied (``run`` is the benchmark's).
"""
