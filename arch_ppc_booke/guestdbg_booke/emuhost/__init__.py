"""An emulated e500 KVM host: Unicorn executes the guest, a model of Linux BookE KVM does the rest.

This first layer is the engine and the board: Unicorn with address-limited hooks, page
protection and counted steps (``engine``), shared guest RAM (``memory``), the ppce500 boot layout
(``board``, ``loader``), the guest TLB (``guest_tlb``) and instruction fields (``isa``).
"""
