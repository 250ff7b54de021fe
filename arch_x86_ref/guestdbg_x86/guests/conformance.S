/*
 * The guest the conformance kit (guestdbg.testing) runs on the emulated x86-64 host.
 *
 * Linked at 0x10000 and started by guestdbg_x86.boot in long mode at CPL0, it loops forever over
 * code0..code4: code0 reads the quadword `watched`, code2 writes it back incremented. Nothing in
 * the loop leaves KVM_RUN unless a debugger arms something, so every stop the kit sees is one of
 * its own points.
 *
 * `own_int3` is the guest's own int3 and `own_step` an instruction the guest single-steps with
 * its own RFLAGS.TF; the loop never runs them, the kit only asks the plugin what a #BP or a
 * DR6.BS #DB exit there means. The #DB and #BP handlers count what they get and return, as a
 * guest OS would.
 */
	.code64
	.text
	.globl start
	.equ LOAD_BASE, 0x10000		/* ld -Ttext=0x10000: the IDT needs link addresses */
start:
	.globl code0, code1, code2, code3, code4
code0:	mov watched(%rip), %rax
code1:	inc %rax
code2:	mov %rax, watched(%rip)
code3:	nop
code4:	jmp code0

	.globl own_int3, own_step
own_int3:
	int3
own_step:
	nop
	jmp code0

db_handler:
	incq db_count(%rip)
	andq $~0x100, 16(%rsp)		/* the interrupted RFLAGS: stop stepping */
	iretq

bp_handler:
	incq bp_count(%rip)
	iretq

other_vector:
	hlt
	jmp other_vector

	.balign 4096
	.globl idt, idt_end
idt:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.ifeq \n - 1
	.set handler, db_handler
	.else
	.ifeq \n - 3
	.set handler, bp_handler
	.else
	.set handler, other_vector
	.endif
	.endif
	.word (handler - start + LOAD_BASE) & 0xffff
	.word 0x10
	.byte 0, 0x8e
	.word ((handler - start + LOAD_BASE) >> 16) & 0xffff
	.long 0, 0
	.endr
idt_end:

	.balign 4096
	.globl watched, db_count, bp_count
watched:	.quad 0
db_count:	.quad 0
bp_count:	.quad 0

	.balign 4096
stack:	.skip 4096
	.globl stack_top
stack_top:
