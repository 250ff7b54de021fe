from guestdbg.testing import ArchConformance


class TestBookeConformance(ArchConformance):
    arch = "ppc_booke"
