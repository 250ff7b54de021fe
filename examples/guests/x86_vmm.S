/*
 * The guest of examples/kvm_x86_vmm.py: three rounds of a little arithmetic, each ending with
 * a byte written to the VMM's debug console (port 0xe9, KVM_EXIT_IO), then hlt (KVM_EXIT_HLT).
 *
 * Linked at 0x10000 and started by guestdbg_x86.boot in 64-bit long mode at CPL0, because a
 * kvm_pvm /dev/kvm only debugs code it emulates, and that is guest CPL0 code using instructions
 * KVM's emulator knows (no int3; docs/reference/this-machine-kvm.md). The example names every address
 * by symbol: bp_target takes the DR0 execute breakpoint.
 *
 * Round n leaves rax = 0x11 * n: inc, then add 0x10, then out.
 */
	.code64
	.text
	.globl start
start:
	xor %eax, %eax
	mov $3, %ecx
	.globl round
round:
	inc %rax
	.globl bp_target
bp_target:
	add $0x10, %rax
	.globl console_out
console_out:
	out %al, $0xe9
	.globl after_out
after_out:
	dec %ecx
	.globl loop_branch
loop_branch:
	jnz round
	.globl done
done:
	hlt
	jmp done

	.balign 16
	.skip 0x1000
	.globl stack_top
stack_top:
