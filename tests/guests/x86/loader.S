/*
 * A loader (issue 16): three rounds of { copy the function at `template` over `dest_fn` with
 * rep movsb, call dest_fn with the round number, add what it returns }. dest_fn starts out as a
 * stale function (returns 7), so a breakpoint set on it before the first copy sits on a word
 * the guest overwrites. An undebugged run ends at `done` with result = 100+101+102 = 303 and
 * rounds = 3; a run that ran the stale code would give less.
 *
 * `same_page_loop` (for bench/rewrite_cost.py): RCX stores to `near_data`, which shares a page
 * with `near_code`, an instruction a breakpoint may sit on; it ends at `same_page_done`.
 * `rdi_loop`: RCX stores to (%rdi) (two vCPUs at once; a device page). `straddle_store`: one
 * 8-byte store of RAX at near_code.
 * `patch_store` (self-modifying code): stores the word at `new_insn` over `patched` (mov $1,
 * %eax becomes mov $2, %eax), then runs it; `patch_done` is reached with EAX = 2.
 * Linked at 0x10000 and started by guestdbg_x86.boot in long mode at CPL0.
 */
	.code64
	.text
	.globl start
	.equ LOAD_BASE, 0x10000
start:
	xor %r12, %r12
	xor %r13, %r13
	.globl round
round:
	lea template(%rip), %rsi
	lea dest_fn(%rip), %rdi
	mov $(template_end - template), %rcx
	rep movsb
	.globl copied
copied:
	mov %r12, %rdi
	call dest_fn
	add %rax, %r13
	inc %r12
	mov %r12, rounds(%rip)
	cmp $3, %r12
	jne round
	mov %r13, result(%rip)
	.globl done
done:
	hlt
	jmp done

	.globl template
template:
	lea 100(%rdi), %rax
	ret
template_end:

	.globl same_page_loop
same_page_loop:
	mov %rcx, near_data(%rip)
	dec %rcx
	jnz same_page_loop
	.globl same_page_done
same_page_done:
	hlt
	jmp same_page_done

	/* RCX stores of RCX, RCX-1 ... 1 to (%rdi): two vCPUs storing at once, or a device */
	.globl rdi_loop
rdi_loop:
	mov %rcx, (%rdi)
	dec %rcx
	jnz rdi_loop
	.globl rdi_done
rdi_done:
	hlt
	jmp rdi_done

	/* one 8-byte store of RAX at near_code: over a trap word and the bytes after it */
	.globl straddle_store
straddle_store:
	mov %rax, near_code(%rip)
	.globl straddle_done
straddle_done:
	hlt
	jmp straddle_done

	.globl patch_store
patch_store:
	mov new_insn(%rip), %eax
	mov %eax, patched(%rip)
	xor %eax, %eax
	.globl patched
patched:
	mov $1, %eax
	.globl patch_done
patch_done:
	hlt
	jmp patch_done

	.globl new_insn
new_insn:
	mov $2, %eax		/* 5 bytes: b8 02 00 00 00 */
	nop			/* pads the word patch_store loads to 4 bytes of it */

fault:
	hlt
	jmp fault

	/* the page the loader writes code into */
	.balign 4096
	.globl dest_fn
dest_fn:
	mov $7, %eax
	ret
	.skip 64, 0x90

	/* a page of code and data: a breakpoint on near_code, stores to near_data */
	.balign 4096
	.globl near_code
near_code:
	nop
	ret
	.balign 64
	.globl near_data
near_data:
	.quad 0

	.balign 4096
idt:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.word (fault - start + LOAD_BASE) & 0xffff
	.word 0x10
	.byte 0, 0x8e
	.word ((fault - start + LOAD_BASE) >> 16) & 0xffff
	.long 0, 0
	.endr
	.globl idt_end
idt_end:

	.balign 4096
	.globl result
result:	.quad 0
	.globl rounds
rounds:	.quad 0

	.balign 4096
stack:	.skip 4096
	.globl stack_top
stack_top:
