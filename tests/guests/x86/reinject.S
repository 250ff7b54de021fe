/*
 * A guest that uses its own #DB and #BP handlers, for the reinjection tests
 * (tests/x86/test_reinjection.py): the debugger must claim only its own events and hand the
 * guest's back exactly as the hardware would have delivered them.
 *
 * Linked at 0x10000, started by guestdbg_x86.boot in long mode at CPL0; each scenario starts at
 * its *_start label and ends in hlt at its *_done label. The handlers record what they saw in
 * the data page: db_dr6 (DR6 as the #DB handler read it), db_count, db_frame_rip (the RIP the
 * CPU pushed), bp_count, bp_frame_rip; any other exception stores its vector in last_vector and
 * halts. The #DB handler clears TF in the interrupted RFLAGS, disables the guest's own DR0-3
 * (DR7 = 0x400) and resets DR6, as an OS handler does, so one event is delivered once.
 */
	.code64
	.text
	.globl start
	.equ LOAD_BASE, 0x10000		/* ld -Ttext=0x10000: the IDT needs link addresses */
start:

/* The guest's own int3: its #BP handler must run once, with the frame's RIP past the int3. */
bp_start:
	nop
guest_int3:
	int3
bp_after_int3:
	nop
bp_done:
	hlt
	jmp bp_done

/* The guest single-steps itself: TF set by popfq traps after the next instruction. */
tf_start:
	pushfq
	orq $0x100, (%rsp)
	popfq
tf_target:
	nop
tf_after:
	nop
tf_done:
	hlt
	jmp tf_done

/* The guest's own execute breakpoint in DR0, armed by the guest. */
dr_start:
	lea dr_target(%rip), %rax
	mov %rax, %dr0
	mov $0x402, %rax
	mov %rax, %dr7
	nop
dr_target:
	nop
dr_done:
	hlt
	jmp dr_done

/* Data accesses for host watchpoints: a 4-byte store, then a 4-byte load. */
watch_start:
	movl $0x1234, watched(%rip)
watch_after_store:
	movl watched(%rip), %eax
watch_after_load:
	nop
watch_done:
	hlt
	jmp watch_done

spin:	jmp spin

db_handler:
	push %rax
	mov %dr6, %rax
	mov %rax, db_dr6(%rip)
	incq db_count(%rip)
	mov 8(%rsp), %rax
	mov %rax, db_frame_rip(%rip)
	andq $~0x100, 24(%rsp)
	mov $0x400, %rax
	mov %rax, %dr7
	mov $0xffff0ff0, %eax
	mov %rax, %dr6
	pop %rax
	iretq

bp_handler:
	push %rax
	incq bp_count(%rip)
	mov 8(%rsp), %rax
	mov %rax, bp_frame_rip(%rip)
	pop %rax
	iretq

	.irp n, 0,2,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
vector_\n:
	movq $\n, last_vector(%rip)
	hlt
	.endr
	.set vector_1, db_handler
	.set vector_3, bp_handler

	.balign 4096
idt:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.word (vector_\n - start + LOAD_BASE) & 0xffff
	.word 0x10
	.byte 0, 0x8e
	.word ((vector_\n - start + LOAD_BASE) >> 16) & 0xffff
	.long 0, 0
	.endr
idt_end:

	.balign 4096
db_dr6:		.quad 0
db_count:	.quad 0
db_frame_rip:	.quad 0
bp_count:	.quad 0
bp_frame_rip:	.quad 0
last_vector:	.quad -1

	.balign 4096
watched:	.long 0

	.balign 4096
stack:	.skip 4096
stack_top:
