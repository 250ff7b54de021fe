/*
 * Registers as the guest sees them (issue 12), for tests/x86/test_registers_as_guest_sees.py:
 * the guest sets registers with its own instructions and stores what its own instructions read
 * (every GPR, PUSHFQ, MOV from CR0/CR3/CR4, RDMSR EFER, MOV from DR0-3/DR7, segment selectors)
 * into seen1, then halts; the host compares KVM_GET_REGS/SREGS/DEBUGREGS with seen1. The host
 * then writes new values through KVM_SET_REGS/DEBUGREGS and resumes at `second`: the guest
 * stores what it reads into seen2, uses RFLAGS.CF (`adc`) into `used`, and halts.
 * Linked at 0x10000 and started by guestdbg_x86.boot in long mode at CPL0.
 */
	.code64
	.text
	.globl start
	.equ LOAD_BASE, 0x10000
start:
	mov $0x1111111111111111, %rax
	mov $0x2222222222222222, %rbx
	mov $0x3333333333333333, %rcx
	mov $0x4444444444444444, %rdx
	mov $0x5555555555555555, %rsi
	mov $0x6666666666666666, %rdi
	mov $0x7777777777777777, %rbp
	mov $0x8888888888888888, %r8
	mov $0x9999999999999999, %r9
	mov $0xaaaaaaaaaaaaaaaa, %r10
	mov $0xbbbbbbbbbbbbbbbb, %r11
	mov $0xcccccccccccccccc, %r12
	mov $0xdddddddddddddddd, %r13
	mov $0xeeeeeeeeeeeeeeee, %r14
	lea seen1(%rip), %r15
	cmp %rbx, %rax			/* CF=1 (0x11.. < 0x22..), SF, ... set by the guest */
	call store_all
	.globl first_halt
first_halt:
	hlt
	.globl second
second:
	lea seen2(%rip), %r15
	call store_all
	mov $0, %rax
	adc $0, %rax			/* + CF as the host wrote it */
	mov %rax, used(%rip)
	.globl second_halt
second_halt:
	hlt
	jmp second_halt

/* Everything the guest reads, at (%r15): GPRs rax..r14 (15 words; r15 is the pointer), RFLAGS
 * as PUSHFQ saw it before the call, CR0, CR3, CR4, EFER, DR0-3, DR7, CS, SS, DS. Flags first:
 * the call and the stores below change none, but they are read before anything else runs. */
store_all:
	pushfq
	mov %rax, 0(%r15)
	mov %rbx, 8(%r15)
	mov %rcx, 16(%r15)
	mov %rdx, 24(%r15)
	mov %rsi, 32(%r15)
	mov %rdi, 40(%r15)
	mov %rbp, 48(%r15)
	mov %r8, 56(%r15)
	mov %r9, 64(%r15)
	mov %r10, 72(%r15)
	mov %r11, 80(%r15)
	mov %r12, 88(%r15)
	mov %r13, 96(%r15)
	mov %r14, 104(%r15)
	popq 112(%r15)
	mov %cr0, %rax
	mov %rax, 120(%r15)
	mov %cr3, %rax
	mov %rax, 128(%r15)
	mov %cr4, %rax
	mov %rax, 136(%r15)
	mov $0xc0000080, %ecx
	rdmsr
	shl $32, %rdx
	or %rdx, %rax
	mov %rax, 144(%r15)
	mov %dr0, %rax
	mov %rax, 152(%r15)
	mov %dr1, %rax
	mov %rax, 160(%r15)
	mov %dr2, %rax
	mov %rax, 168(%r15)
	mov %dr3, %rax
	mov %rax, 176(%r15)
	mov %dr7, %rax
	mov %rax, 184(%r15)
	xor %eax, %eax
	mov %cs, %ax
	mov %rax, 192(%r15)
	mov %ss, %ax
	mov %rax, 200(%r15)
	mov %ds, %ax
	mov %rax, 208(%r15)
	mov 0(%r15), %rax		/* rax, rcx, rdx back for the host's view */
	mov 16(%r15), %rcx
	mov 24(%r15), %rdx
	pushq 112(%r15)
	popfq				/* and the flags */
	ret

	.balign 4096
	.globl seen1
seen1:	.skip 256
	.globl seen2
seen2:	.skip 256
	.globl used
used:	.quad 0

	.balign 4096
stack:	.skip 4096
	.globl stack_top
stack_top:
