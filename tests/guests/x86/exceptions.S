/*
 * One instruction per exception class, each with a handler that counts it, for the host
 * single-step tests (tests/fidelity/test_x86_exception_steps.py): a host step or a host
 * breakpoint on the instruction must deliver the guest's exception to its handler exactly once.
 *
 * Linked at 0x10000, started by guestdbg_x86.boot in long mode at CPL0 with the loader's
 * identity map of RAM (so 1 GiB is not mapped). Each scenario starts at its *_start label and
 * ends in hlt at *_done. A handler counts its vector in count_<n>, stores the pushed RIP in
 * frame_rip, the pushed RFLAGS in frame_rflags (and CR2 for #PF), and resumes at the scenario's *_after label (faults: the frame's
 * RIP is the faulting instruction, so the handler replaces it; traps return past it anyway).
 * int $0x20 and int3 return with iretq as they are; an unexpected vector halts with it in
 * last_vector. <handler>_second labels each handler's second instruction: where a host single
 * step over the exception stops (one instruction into the handler).
 */
	.code64
	.text
	.globl start
	.equ LOAD_BASE, 0x10000
	.equ UNMAPPED, 0x40000000
start:

bp_start:
	nop
bp_insn:
	int3
bp_after:
	nop
bp_done:
	hlt
	jmp bp_done

intn_start:
	nop
intn_insn:
	int $0x20
intn_after:
	nop
intn_done:
	hlt
	jmp intn_done

ud_start:
	nop
ud_insn:
	ud2
ud_after:
	nop
ud_done:
	hlt
	jmp ud_done

gp_start:
	movabsq $0x8000000000000000, %rax
gp_insn:
	movq (%rax), %rbx		/* non-canonical: #GP(0) */
gp_after:
	nop
gp_done:
	hlt
	jmp gp_done

pf_start:
	movl $UNMAPPED, %eax
pf_insn:
	movq (%rax), %rbx		/* not present: #PF */
pf_after:
	nop
pf_done:
	hlt
	jmp pf_done

/* Traps: the frame's RIP is already past the instruction. */
bp_handler:
	incq count_3(%rip)
bp_handler_second:
	pushq 16(%rsp)
	popq frame_rflags(%rip)
	pushq (%rsp)
	popq frame_rip(%rip)
	iretq

intn_handler:
	incq count_32(%rip)
intn_handler_second:
	pushq 16(%rsp)
	popq frame_rflags(%rip)
	pushq (%rsp)
	popq frame_rip(%rip)
	iretq

/* Faults: record the frame's RIP, resume after the instruction. */
ud_handler:
	incq count_6(%rip)
ud_handler_second:
	pushq 16(%rsp)
	popq frame_rflags(%rip)
	pushq (%rsp)
	popq frame_rip(%rip)
	leaq ud_after(%rip), %rax
	movq %rax, (%rsp)
	iretq

gp_handler:
	incq count_13(%rip)
gp_handler_second:
	pushq 24(%rsp)
	popq frame_rflags(%rip)
	pushq 8(%rsp)			/* above the error code */
	popq frame_rip(%rip)
	pushq (%rsp)
	popq error_code(%rip)
	leaq gp_after(%rip), %rax
	movq %rax, 8(%rsp)
	addq $8, %rsp
	iretq

pf_handler:
	incq count_14(%rip)
pf_handler_second:
	pushq 24(%rsp)
	popq frame_rflags(%rip)
	pushq 8(%rsp)
	popq frame_rip(%rip)
	pushq (%rsp)
	popq error_code(%rip)
	movq %cr2, %rax
	movq %rax, fault_cr2(%rip)
	leaq pf_after(%rip), %rax
	movq %rax, 8(%rsp)
	addq $8, %rsp
	iretq

	.irp n, 0,1,2,4,5,7,8,9,10,11,12,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
vector_\n:
	movq $\n, last_vector(%rip)
	hlt
	.endr
	.set vector_3, bp_handler
	.set vector_6, ud_handler
	.set vector_13, gp_handler
	.set vector_14, pf_handler
	.set vector_32, intn_handler

	.balign 4096
idt:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32
	.word (vector_\n - start + LOAD_BASE) & 0xffff
	.word 0x10
	.byte 0, 0x8e
	.word ((vector_\n - start + LOAD_BASE) >> 16) & 0xffff
	.long 0, 0
	.endr
idt_end:

	.balign 4096
count_3:	.quad 0
count_6:	.quad 0
count_13:	.quad 0
count_14:	.quad 0
count_32:	.quad 0
frame_rip:	.quad 0
frame_rflags:	.quad 0
error_code:	.quad -1
fault_cr2:	.quad 0
last_vector:	.quad -1

	.balign 4096
stack:	.skip 4096
stack_top:
