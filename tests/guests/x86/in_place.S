/*
 * The guest of the in-place executor's differential check (tests/x86/test_execute_differential.py
 * and test_execute_in_place.py): nothing but a halt. The tests write each instruction into RAM
 * themselves and set the registers around it; the loader's identity map (guestdbg_x86.boot)
 * covers the code they use, and they set its accessed bits as a guest that has run would have.
 */
	.code64
	.text
	.globl start
start:
	hlt
	jmp start
