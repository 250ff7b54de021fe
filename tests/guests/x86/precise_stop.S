/* A loop whose registers and memory say which instruction ran last, so a stop can be checked for
   being at an instruction boundary: at `loop` r12 == r13 == count; at `hit` (the increment of
   count in memory, not yet run) r12 == r13 + 1 and count == r12 - 1; at `tail` r12 == r13 + 1
   and count == r12; at `tail_jmp` r12 == r13 == count. The read-modify-write store is the
   access an asynchronous stop can leave done with RIP still on it (guestdbg.emuhost.unicorn). */
	.text
	.globl start
start:
	xorl %r12d, %r12d
	xorl %r13d, %r13d
	movq $0, count(%rip)
	.globl loop
loop:
	incq %r12
	.globl hit
hit:
	incq count(%rip)
	.globl tail
tail:
	incq %r13
	.globl tail_jmp
tail_jmp:
	jmp loop

	.data
	.align 8
	.globl count
count:
	.quad 0
	.globl stack_top
	.space 256
stack_top:
