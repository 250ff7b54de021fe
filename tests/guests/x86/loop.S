/*
 * Loops for bench/x86_debug_paths.py: a counted loop of ordinary instructions (count_loop, RCX
 * iterations of a load+store, a decrement and a branch) and a loop of the guest's own int3s
 * (int3_loop, RCX of them, each taken by the guest's #BP handler, which counts it).
 * Linked at 0x10000 and started by guestdbg_x86.boot in long mode at CPL0.
 */
	.code64
	.text
	.globl start
	.equ LOAD_BASE, 0x10000
start:
count_loop:
	incq counter(%rip)
	dec %rcx
	jnz count_loop
count_done:
	hlt
	jmp count_done

int3_loop:
	int3
	dec %rcx
	jnz int3_loop
int3_done:
	hlt
	jmp int3_done

never:	nop
	hlt

bp_handler:
	incq bp_count(%rip)
	iretq

other_vector:
	hlt

	.balign 4096
idt:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.ifeq \n - 3
	.set handler, bp_handler
	.else
	.set handler, other_vector
	.endif
	.word (handler - start + LOAD_BASE) & 0xffff
	.word 0x10
	.byte 0, 0x8e
	.word ((handler - start + LOAD_BASE) >> 16) & 0xffff
	.long 0, 0
	.endr
idt_end:

	.balign 4096
counter:	.quad 0
bp_count:	.quad 0

	.balign 4096
unrelated:	.quad 0

	.balign 4096
stack:	.skip 4096
stack_top:
