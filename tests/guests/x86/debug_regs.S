/*
 * The guest of the KVM selftest tools/testing/selftests/kvm/x86/debug_regs.c, for
 * tests/x86/test_selftest_debug_regs.py, on the emulated x86 host and on real /dev/kvm.
 *
 * Linked at 0x10000 and started by guestdbg_x86.boot in 64-bit long mode at CPL0 (the loader
 * writes the page tables and GDT below 0x10000). The labels are the selftest's: sw_bp (int3),
 * hw_bp (nop), the store to guest_value ending at write_data (a 7-byte RIP-relative mov, so
 * "RIP -= 7" re-executes it), ss_start (sti; xor; cpuid; movl; rdmsr; cli: 1, 2, 2, 5, 2, 1
 * bytes) and bd_start (mov %dr0,%rax). The selftest's x2APIC self-IPI is left out: neither host
 * has an in-kernel interrupt controller here. rdmsr reads IA32_TSC (0x10), which every host
 * emulates without side effects. hlt ends the run where the selftest's ucall did.
 */
	.code64
	.text
	.globl start
	.equ LOAD_BASE, 0x10000		/* ld -Ttext=0x10000: the IDT needs link addresses */
start:
sw_bp:	int3
hw_bp:	nop
	mov $1234, %rax
	mov %rax, guest_value(%rip)
write_data:
ss_start:
	sti
	xor %eax, %eax
	cpuid
	movl $0x10, %ecx
	rdmsr
	cli
bd_start:
	mov %dr0, %rax
done:	hlt
after_done:
	jmp done

/* Any exception the guest takes lands here with its vector in last_vector, then halts. */
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
vector_\n:
	movq $\n, last_vector(%rip)
	hlt
	.endr

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
guest_value:
	.long 0
	.balign 8
last_vector:
	.quad -1

	.balign 4096
stack:	.skip 4096
stack_top:
