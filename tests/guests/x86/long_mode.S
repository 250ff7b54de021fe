/*
 * x86-64 guest for the real-/dev/kvm smoke test (tests/test_real_kvm.py).
 *
 * No firmware: the test loads this image at guest-physical 0 and puts the vCPU straight into
 * 64-bit long mode at CPL0 with KVM_SET_SREGS (CR3 = pml4, GDTR = gdt, IDTR = idt, CS = 0x10,
 * data = 0x18), the recipe of docs/reference/this-machine-kvm.md. Everything stays at CPL0 because a
 * kvm_pvm host only debugs code it emulates, and only with instructions KVM's emulator knows:
 * no int3 / int n; hlt ends each scenario with a clean KVM_EXIT_HLT.
 *
 * The test finds every address by symbol, so nothing below is duplicated in Python.
 */
	.code64
	.text
	.globl step_start
image_start:

/* Identity map of the first 2 MiB: PML4 -> PDPT -> one 2 MiB page. */
	.org 0x1000
pml4:	.quad (pdpt - image_start) + 0x3	/* present | writable */
	.org 0x2000
pdpt:	.quad (pd - image_start) + 0x3
	.org 0x3000
pd:	.quad 0x83				/* present | writable | 2 MiB page */

	.org 0x4000
gdt:	.quad 0
	.quad 0
	.quad 0x00af9b000000ffff		/* 0x10: code, L=1, DPL0 */
	.quad 0x00cf93000000ffff		/* 0x18: data, writable */
gdt_end:

/* IDT: vectors 0-31 are 64-bit interrupt gates (type 0xe, DPL0, present) to vector_<n>. */
	.macro gate n
	.word (vector_\n - image_start) & 0xffff
	.word 0x10
	.byte 0, 0x8e
	.word ((vector_\n - image_start) >> 16) & 0xffff
	.long 0, 0
	.endm

	.org 0x5000
idt:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	gate \n
	.endr
idt_end:

/* Each handler leaves its vector in eax (0xdead00<n>) and halts; RIP then reads vector_<n>_halted. */
	.org 0x6000
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
vector_\n:
	mov $(0xdead0000 + \n), %eax
	hlt
vector_\n\()_halted:
	.endr

	.org 0x8000
stack:	.skip 0x1000
stack_top:

/* Single-step: one KVM_EXIT_DEBUG per instruction, pc at the next label each time. */
	.org 0x10000
step_start:
	nop
step_1:	inc %rax
step_2:	inc %rax
step_3:	nop
step_4:	hlt
step_end:

/* Execute breakpoint: DR0 = hw_bp_target stops before the second inc runs. */
hw_bp_start:
	inc %rax
hw_bp_target:
	inc %rax
hw_bp_next:
	nop
	hlt
hw_bp_end:

/* Runs until kicked: KVM_RUN returns only on a signal or immediate_exit. */
spin:	jmp spin

/* Endless three-instruction loop for stepping benchmarks (bench/kvm_exit_overhead.py): each
 * single step lands on the next label; rax counts the passes. */
step_loop:
	inc %rax
step_loop_nop:
	nop
step_loop_jmp:
	jmp step_loop

/* One store of rax to the address in rbx, then stop: a store into a read-only memory slot
 * leaves KVM_RUN as KVM_EXIT_MMIO (docs/reference/kvm-debug-abi.md §11). */
store_rbx:
	mov %rax, (%rbx)
store_rbx_next:
	hlt

/* One load from the address in rbx into rax, then stop: a load from a read-only memory slot
 * is an ordinary load (docs/reference/kvm-debug-abi.md §11.2). */
	.globl load_rbx, load_rbx_next
load_rbx:
	mov (%rbx), %rax
load_rbx_next:
	hlt
