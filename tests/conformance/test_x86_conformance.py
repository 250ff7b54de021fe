from guestdbg.testing import ArchConformance


class TestX86Conformance(ArchConformance):
    arch = "x86"
