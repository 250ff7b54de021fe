/*
 * Every vCPU adds to `counts`, forever: the x86-64 guest of examples/vmm_threads.py, whose VMM
 * keeps its own vCPU threads while GDB comes and goes. Linked at 0x10000, started by
 * guestdbg_x86.boot in long mode at CPL0; it uses no stack and no I/O.
 */
	.code64
	.text
	.globl start
start:
	.globl count
count:
	incq counts(%rip)
	.globl store
store:
	jmp count

	.balign 4096
	.globl counts
counts:	.quad 0
	.balign 4096
stack:	.skip 4096
	.globl stack_top
stack_top:
