"""Checking the emulated e500mc host against QEMU with random guest programs (issue 12), and the
64-bit e5500 and e6500 hosts against ``qemu-system-ppc64`` (issue 14, ``core=``).

* ``generator`` - seeded random e500mc programs with their own interrupt handlers (64-bit ones,
  in 64-bit mode, for e5500 and e6500);
* ``mix`` - the instruction mix the generator draws from;
* ``rsp`` - a raw GDB remote-protocol client; ``qemu_oracle`` - QEMU's ppce500 as the reference;
* ``emulated`` - the same program on the emulated host, through a guestdbg ``Session``;
* ``known`` - the differences the kernel or the hardware explain (``docs/fidelity.md``);
* ``differential`` - both runs stop for stop, compared and tallied (``run`` is the benchmark's);
* ``execute_diff`` - the plugin's ``execute_in_place`` subset against one real single step per
  random instruction on the emulated e500mc and e500v2 hosts (``bench/execute_diff.py``).
"""
